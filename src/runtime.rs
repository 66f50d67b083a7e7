//! The one runtime every mode uses: single-threaded, since a pod-local wait
//! or a handful of callbacks never needs more.

use crate::error::Error;

pub fn new() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::permanent(format!("cannot start the runtime: {e}")))
}
