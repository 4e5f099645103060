//! The deterministic simulation's parts: a seeded executor with a virtual clock (`exec`), GitHub's
//! truth as a model answering the worker's queries (`github`), KV as two locations see it (`kv`),
//! the isolates' memory tiers (`isolate`), the world they run the worker's own code in (`world`:
//! the locations, the owner directories and their alarms), what a run does (`ops`) and what it
//! checks once faults stop (`checks`).

pub mod checks;
pub mod exec;
pub mod github;
pub mod isolate;
pub mod kv;
pub mod ops;
pub mod world;
