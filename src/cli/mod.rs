//! The `kvlab` command line: raw arguments -> validated plans -> library calls.

mod forward_cmd;
mod gguf_path;
pub mod model_cmds;
pub mod pipeline_cmds;
pub mod press_flags;
pub mod press_generate;
pub mod spec_flags;
mod stage_defaults;
pub mod stages_cmd;
pub mod store_cmds;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "kvlab",
    version,
    about = "A content-addressed workbench for KV-cache research"
)]
pub struct Cli {
    /// The store directory (results/ is created beside it).
    #[arg(long, global = true, default_value = "artifacts")]
    pub store: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline (or some of its stages); cached stages are not recomputed.
    Run {
        pipeline: PathBuf,
        /// Run only this stage (repeatable).
        #[arg(long = "stage")]
        stages: Vec<String>,
        /// With --stage: also run the stages it depends on.
        #[arg(long)]
        with_deps: bool,
        /// Recompute the selected stages even when cached.
        #[arg(long)]
        force: bool,
        /// Apply the named preset of the pipeline file.
        #[arg(long)]
        preset: Option<String>,
        /// Also write every planned item's spec to DIR/<key>.json (for `kvlab item`).
        #[arg(long, value_name = "DIR")]
        write_specs: Option<PathBuf>,
        /// Where per-item work runs: local (this process) or slurm (array jobs).
        #[arg(long, default_value = "local", value_parser = ["local", "slurm"])]
        executor: String,
        /// A Slurm setting, overriding [executor.slurm] (repeatable), e.g. partition=gpu.
        #[arg(long = "slurm", value_name = "KEY=VALUE")]
        slurm: Vec<String>,
        /// Run every model stage on this device (cpu, cuda, cuda:N), over its `device` parameter.
        #[arg(long)]
        device: Option<String>,
    },
    /// Compute and publish one item: from a spec file, or task INDEX of a Slurm job directory.
    Item {
        #[arg(long, conflicts_with_all = ["job", "index"])]
        spec: Option<PathBuf>,
        #[arg(long, requires = "index")]
        job: Option<PathBuf>,
        #[arg(long, requires = "job")]
        index: Option<usize>,
    },
    /// Per stage: cached, stale (and why) or missing.
    Status {
        pipeline: PathBuf,
        #[arg(long)]
        preset: Option<String>,
        #[arg(long)]
        json: bool,
        /// As `kvlab run --device` (the keys depend on it).
        #[arg(long)]
        device: Option<String>,
    },
    /// Re-hash every published file; exit 1 naming each corrupt one.
    Verify {
        /// Remove corrupt objects so the next run recomputes them.
        #[arg(long)]
        repair: bool,
    },
    /// Delete objects no results/ link or pin reaches.
    Gc {
        #[arg(long)]
        dry_run: bool,
    },
    /// Stage kinds: inputs, outputs and parameters (defaults and docs from stages/<kind>.toml).
    Stages {
        /// Show only this kind, with every doc line.
        kind: Option<String>,
        /// Print a JSON array instead.
        #[arg(long)]
        json: bool,
    },
    /// Fetch a pinned model or dataset (see stages/pins.toml) into the store; print its path.
    Fetch { pin: String },
    /// Generate a continuation of one prompt (defaults from stages/generate.toml).
    Generate {
        /// A GGUF path or a pinned model name (e.g. smollm2-135m).
        #[arg(long)]
        model: String,
        #[arg(long)]
        prompt: Option<String>,
        /// Token ids instead of --prompt (JSON list or whitespace-separated); no stop tokens.
        #[arg(long)]
        prompt_ids_file: Option<PathBuf>,
        /// Wrap the prompt in the model's chat template.
        #[arg(long)]
        chat: bool,
        #[arg(long)]
        max_tokens: Option<usize>,
        #[arg(long)]
        temperature: Option<f64>,
        #[arg(long)]
        seed: Option<u64>,
        /// quant, f32, f16 or bf16.
        #[arg(long)]
        dtype: Option<String>,
        /// KV-cache storage: auto, f32, f16 or bf16.
        #[arg(long)]
        kv_dtype: Option<String>,
        /// cpu, cuda or cuda:N (CUDA needs a `make cuda` build).
        #[arg(long)]
        device: Option<String>,
        /// Print a JSON object: prompt_ids, new_ids, text, ttft_ms, tpot_ms
        /// (with speculation also drafted, accepted, acceptance_rate, mean_accepted_len).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        spec: spec_flags::SpecFlags,
        #[command(flatten)]
        press: press_flags::PressFlags,
    },
    /// Perplexity of a text file in windows (defaults from stages/perplexity.toml).
    Perplexity {
        #[arg(long)]
        model: String,
        #[arg(long)]
        text: PathBuf,
        #[arg(long)]
        window: Option<usize>,
        /// Defaults to the window (non-overlapping windows).
        #[arg(long)]
        stride: Option<usize>,
        #[arg(long)]
        max_windows: Option<usize>,
        #[arg(long)]
        dtype: Option<String>,
        #[arg(long)]
        kv_dtype: Option<String>,
        /// cpu, cuda or cuda:N (CUDA needs a `make cuda` build).
        #[arg(long)]
        device: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        press: press_flags::PressFlags,
    },
    /// Plumbing: one forward pass over token ids from a model file or HF
    /// directory, writing last-position logits and layer K/V as safetensors,
    /// then timed greedy decoding (for tools/gpu_check.sh).
    #[command(hide = true)]
    Forward(forward_cmd::ForwardArgs),
}

/// Run the parsed command; the returned code is the process exit status.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run {
            pipeline,
            stages,
            with_deps,
            force,
            preset,
            write_specs,
            executor,
            slurm,
            device,
        } => pipeline_cmds::run(
            &cli.store,
            &pipeline,
            preset.as_deref(),
            device.as_deref(),
            kvlab::dag::runner::RunOptions {
                stages,
                with_deps,
                force,
                spec_dir: write_specs,
                executor: Default::default(),
            },
            (executor == "slurm").then_some(slurm),
        ),
        Command::Item { spec, job, index } => {
            pipeline_cmds::item(&cli.store, spec.as_deref(), job.as_deref().zip(index))
        }
        Command::Status {
            pipeline,
            preset,
            json,
            device,
        } => pipeline_cmds::status(
            &cli.store,
            &pipeline,
            preset.as_deref(),
            device.as_deref(),
            json,
        ),
        Command::Verify { repair } => store_cmds::verify(&cli.store, repair),
        Command::Gc { dry_run } => store_cmds::gc(&cli.store, dry_run),
        Command::Stages { kind, json } => stages_cmd::stages(kind.as_deref(), json),
        Command::Fetch { pin } => store_cmds::fetch(&cli.store, &pin),
        Command::Generate {
            model,
            prompt,
            prompt_ids_file,
            chat,
            max_tokens,
            temperature,
            seed,
            dtype,
            kv_dtype,
            device,
            json,
            spec,
            press,
        } => model_cmds::generate_cmd(
            &cli.store,
            model_cmds::GenerateArgs {
                model,
                prompt,
                prompt_ids_file,
                chat,
                max_tokens,
                temperature,
                seed,
                dtype,
                kv_dtype,
                device,
                json,
                spec,
                press,
            },
        ),
        Command::Perplexity {
            model,
            text,
            window,
            stride,
            max_windows,
            dtype,
            kv_dtype,
            device,
            json,
            press,
        } => model_cmds::perplexity_cmd(
            &cli.store,
            model_cmds::PerplexityArgs {
                model,
                text,
                window,
                stride,
                max_windows,
                dtype,
                kv_dtype,
                device,
                json,
                press,
            },
        ),
        Command::Forward(a) => forward_cmd::forward(&cli.store, a),
    }
}
