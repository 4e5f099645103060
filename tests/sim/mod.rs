//! The deterministic simulation's parts: a seeded executor with a virtual clock (`exec`), GitHub's
//! truth as a model answering the worker's queries (`github`), and the world they run the
//! worker's own code in (`world`): KV, the owner directories and their alarms, the checks.

pub mod exec;
pub mod github;
pub mod world;
