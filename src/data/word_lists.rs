//! Small fixed vocabularies for synthetic tasks (keys, entities, filler words).

pub const ADJECTIVES: &[&str] = &[
    "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hollow", "icy", "jolly",
    "keen", "lucky", "mellow", "noble", "odd", "proud", "quiet", "rapid", "silent", "tidy",
    "upbeat", "vivid", "wary", "young", "zesty", "bold", "crisp", "dim", "fancy", "grand",
];

pub const NOUNS: &[&str] = &[
    "falcon", "harbor", "lantern", "meadow", "orchard", "pebble", "quartz", "river", "saddle",
    "thistle", "umbrella", "violin", "walnut", "yarrow", "zephyr", "anchor", "beacon", "canyon",
    "dagger", "ember", "fjord", "glacier", "hammock", "island", "jasmine", "kettle", "lagoon",
    "marble", "nectar", "oyster",
];

pub const PEOPLE: &[&str] = &[
    "Alice Moreau",
    "Bruno Castell",
    "Chen Wei",
    "Dana Okafor",
    "Emil Varga",
    "Farah Haddad",
    "Goran Petrov",
    "Hana Sato",
    "Ivan Lindqvist",
    "Julia Romero",
    "Kofi Mensah",
    "Lena Fischer",
    "Mateo Silva",
    "Nadia Rahman",
    "Oscar Dubois",
    "Priya Nair",
    "Quinn Walsh",
    "Rosa Marin",
    "Samir Aziz",
    "Tove Berg",
];

pub const COMPANIES: &[&str] = &[
    "Arclight Systems",
    "Bluefen Labs",
    "Cobalt Foundry",
    "Driftwood Analytics",
    "Emberline Tools",
    "Foxglove Robotics",
    "Granite Software",
    "Heliotrope Bio",
    "Ironbark Energy",
    "Juniper Logistics",
    "Kestrel Optics",
    "Lumen Freight",
    "Mistral Looms",
    "Northwind Ceramics",
    "Obsidian Media",
];

pub const CITIES: &[&str] = &[
    "Lisbon",
    "Oslo",
    "Nairobi",
    "Osaka",
    "Montevideo",
    "Tallinn",
    "Hanoi",
    "Quito",
    "Perth",
    "Krakow",
    "Marrakesh",
    "Valparaiso",
    "Reykjavik",
    "Bergen",
    "Tbilisi",
    "Cusco",
    "Ghent",
    "Izmir",
    "Lyon",
    "Seville",
];

/// Filler words for the common-words task.
pub const WORDS: &[&str] = &[
    "apple", "bridge", "candle", "desert", "engine", "forest", "garden", "helmet", "insect",
    "jacket", "kitten", "ladder", "mirror", "needle", "office", "pencil", "rabbit", "saddle",
    "teapot", "valley", "window", "yogurt", "button", "carpet", "dragon", "feather", "guitar",
    "harvest", "island", "jungle", "kernel", "lemon", "magnet", "napkin", "orange", "pillow",
    "quiver", "rocket", "spider", "tunnel", "violet", "wallet", "basket", "cactus", "dolphin",
    "elbow", "fossil", "goblet", "hazel", "igloo", "jigsaw", "koala", "lizard", "muffin", "noodle",
    "otter", "parrot", "quilt", "ribbon", "sponge",
];
