//! What graceful-wait does besides waiting:
//!
//! | mode | where it runs | what it does |
//! |---|---|---|
//! | [`callback`] | the app's preStop | sends termination callbacks, retried until delivered |
//! | [`exec`] | the app's entrypoint | wraps the app: signals, reaping, callbacks, done file |
//! | [`install`] | the init container | copies the binary into the shared volume |
//! | [`sleep`] | behind a wait, in a preStop | pauses, as the preStop's `sleep` action did |
//! | [`docs`] | a workstation | prints shell completions or the man page |

pub mod callback;
pub mod docs;
pub mod exec;
pub mod install;
pub mod sleep;
