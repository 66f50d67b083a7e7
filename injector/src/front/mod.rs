//! The front ends: how manifests reach the stream and how its results reach
//! users — the command line over files and pipes ([`cli`], [`run`],
//! [`files`], [`report`]), the KRM function ([`krm`]), the admission webhook
//! ([`webhook`]) and Istio's injection template ([`istio_template`]); and the
//! generated reference ([`reference`](mod@reference)).

pub mod cli;
pub(crate) mod files;
pub(crate) mod istio_template;
pub(crate) mod krm;
pub mod reference;
pub mod report;
pub mod run;
pub mod webhook;
