//! The YAML engine: reading a stream into span-keeping trees, go-yaml's
//! tolerances, the meaning of a node, writing new YAML text and placing it at
//! the right offsets. It knows nothing of Kubernetes and does no I/O; every
//! other room uses it, and it uses none of them.

pub(crate) mod edits;
pub(crate) mod emit;
pub(crate) mod lines;
pub(crate) mod meaning;
pub(crate) mod tolerate;
pub(crate) mod tree;

pub use lines::Pos;
pub use tolerate::{tolerant, tolerated, Read};
pub use tree::{for_each_document, Documents, Kind, Node, Step, YamlError};
