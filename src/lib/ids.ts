import { randomBytes } from "node:crypto";

/** A 64-hex-digit random ID, as Docker uses for containers and exec instances. */
export function newId(): string {
  return randomBytes(32).toString("hex");
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

const left = ["admiring", "amazing", "awesome", "blissful", "bold", "brave", "busy", "charming", "clever", "compassionate",
  "competent", "confident", "cool", "dazzling", "determined", "eager", "ecstatic", "elastic", "elegant", "epic",
  "exciting", "fervent", "festive", "focused", "friendly", "frosty", "gallant", "gifted", "goofy", "gracious",
  "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "jolly", "jovial",
  "keen", "kind", "laughing", "loving", "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous",
  "nice", "nifty", "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless",
  "quirky", "quizzical", "relaxed", "reverent", "romantic", "sad", "serene", "sharp", "silly", "sleepy", "stoic",
  "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty", "trusting", "upbeat", "vibrant", "vigilant",
  "vigorous", "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen"];
const right = ["albattani", "allen", "almeida", "archimedes", "ardinghelli", "babbage", "banach", "bardeen", "bartik",
  "bassi", "bell", "benz", "bhabha", "blackwell", "bohr", "booth", "borg", "bose", "brahmagupta", "brattain", "brown",
  "carson", "cerf", "chandrasekhar", "chaplygin", "chatelet", "clarke", "cohen", "curie", "darwin", "davinci", "dijkstra",
  "dirac", "driscoll", "dubinsky", "easley", "einstein", "elion", "engelbart", "euclid", "euler", "faraday", "fermat",
  "fermi", "feynman", "franklin", "galileo", "gates", "goldberg", "goldstine", "golick", "goodall", "hamilton", "hawking",
  "heisenberg", "hermann", "hodgkin", "hoover", "hopper", "hugle", "hypatia", "jang", "jennings", "jepsen", "joliot",
  "jones", "kalam", "kapitsa", "keller", "kepler", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande",
  "lamarr", "lamport", "leakey", "leavitt", "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira",
  "mayer", "mccarthy", "mcclintock", "mclean", "meitner", "mendel", "mendeleev", "minsky", "mirzakhani", "morse",
  "murdock", "napier", "nash", "neumann", "newton", "nobel", "noether", "northcutt", "noyce", "panini", "pare",
  "pasteur", "payne", "perlman", "pike", "poincare", "poitras", "ptolemy", "raman", "ramanujan", "ride", "ritchie",
  "roentgen", "rosalind", "saha", "sammet", "shannon", "shaw", "shirley", "shockley", "sinoussi", "snyder", "spence",
  "stallman", "stonebraker", "swanson", "swartz", "swirles", "tesla", "thompson", "torvalds", "turing", "varahamihira",
  "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing", "wozniak", "wright", "yalow", "yonath"];

/** Docker-style random name: adjective_scientist. */
export function randomName(): string {
  const pick = (a: string[]) => a[randomBytes(2).readUInt16BE(0) % a.length];
  return `${pick(left)}_${pick(right)}`;
}
