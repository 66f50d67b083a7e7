//! The stream: read → plan → apply → prove → write, one document at a time.
//! Each document is planned ([`crate::plan`]), turned into edits
//! ([`crate::apply`]), proved ([`crate::verify`]) and only then handed to a
//! [`Sink`]. The front ends (files, stdin, KRM, the webhook) all come through
//! here.

//!
//! - [`run`]: one text's run — read strictly or as go-yaml reads it, each
//!   document's region proved on its own, or else the whole stream;
//! - [`pieces`]: a stream read from a reader a document at a time, handled by
//!   a pool of workers and written in order; a stream with a directive is
//!   read whole.

mod pieces;
mod run;

use crate::apply::{self, Applied};
use crate::config::Config;
use crate::error::Error;
use crate::plan::{self, Options, Outcome};
use crate::yaml::Node;
pub(crate) use pieces::utf8;
pub use pieces::{inject_from, MAX_WORKERS};
use run::Run;

pub struct Injected {
    pub text: String,
    /// What happened, object by object ([`crate::front::report::summary`] writes it
    /// for stderr).
    pub outcomes: Vec<Outcome>,
    /// Whether anything was changed.
    pub changed: bool,
}

/// What a run did, when its output went to a [`Sink`].
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub changed: bool,
    /// How many documents the stream held (empty ones too).
    pub documents: usize,
}

/// Where the verified output goes, a piece at a time.
pub trait Sink {
    fn write(&mut self, text: &str) -> Result<(), Error>;
    /// Forgets everything written (to start over another way).
    fn reset(&mut self) -> Result<(), Error>;
}

impl Sink for String {
    fn write(&mut self, text: &str) -> Result<(), Error> {
        self.push_str(text);
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Error> {
        self.clear();
        Ok(())
    }
}

/// Plans, edits and verifies, into memory: see [`inject_into`].
pub fn inject(src: &str, config: &Config, options: &Options) -> Result<Injected, Error> {
    inject_with(src, config, options, Faults::default())
}

/// Damage done on purpose, to show that the proof catches it: the tests of
/// the proof use it; a run never does.
#[doc(hidden)]
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// Damages the edited text before it is proved.
    pub sabotage: Option<fn(&str) -> String>,
    /// Proves the whole stream at once (the path taken when a document
    /// cannot be read on its own), not document by document.
    pub whole_stream: bool,
    /// Proves each document by reading all of its output again (the path
    /// taken where reading only the lines around the edits does not apply).
    pub read_all: bool,
}

/// [`inject`] with `faults`: for the tests of the proof.
#[doc(hidden)]
pub fn inject_with(
    src: &str,
    config: &Config,
    options: &Options,
    faults: Faults,
) -> Result<Injected, Error> {
    let mut text = String::new();
    let run = Run {
        config,
        options,
        faults,
        first_document: 0,
        first_line: 1,
    };
    let report = run.write_to(src, &mut text)?;
    Ok(Injected {
        text,
        outcomes: report.outcomes,
        changed: report.changed,
    })
}

/// Plans, edits, and verifies ([`crate::verify`]), writing to `sink` only
/// text the check has proved; on an error the sink holds nothing usable and
/// must be dropped.
///
/// The stream is handled one document at a time: each document's region of
/// the text (from the end of the previous one through the line its root ends
/// on) is planned, edited, read back on its own and checked, then written.
/// So memory follows the largest document, not the stream. A region that is
/// not proved on its own (it reads differently alone — a directive or tag
/// handle from earlier in the stream — or something is wrong) sends the
/// whole stream down the slower path that checks it whole, in memory, and
/// either proves it or reports what is wrong.
pub fn inject_into(
    src: &str,
    config: &Config,
    options: &Options,
    sink: &mut dyn Sink,
) -> Result<Report, Error> {
    let run = Run {
        config,
        options,
        faults: Faults::default(),
        first_document: 0,
        first_line: 1,
    };
    run.write_to(src, sink)
}

/// Plans one document (`root`, read from `src`) and turns the plan into
/// edits: what the run does, and what the proof does again on the output.
pub(crate) fn plan_and_apply(
    src: &str,
    root: &Node,
    config: &Config,
    options: &Options,
) -> Result<Applied, Error> {
    apply::document(src, root, plan::document(src, root, config, options)?)
}

/// Where a streamed run's outcomes go as it goes (the summary, folded when
/// long, or a list).
pub trait Outcomes {
    fn push(&mut self, outcome: Outcome);
    /// Forgets everything pushed (the run starts over another way).
    fn reset(&mut self);
}

impl Outcomes for Vec<Outcome> {
    fn push(&mut self, outcome: Outcome) {
        Vec::push(self, outcome);
    }

    fn reset(&mut self) {
        self.clear();
    }
}

/// Where a streamed run's results go: the verified text and the outcomes,
/// which are forgotten together when the run starts over another way.
pub struct Destination<'d> {
    pub sink: &'d mut dyn Sink,
    pub outcomes: &'d mut dyn Outcomes,
}

impl Destination<'_> {
    fn write(&mut self, text: &str) -> Result<(), Error> {
        self.sink.write(text)
    }

    fn push(&mut self, outcome: Outcome) {
        self.outcomes.push(outcome);
    }

    /// Forgets everything written and pushed (a stream with a directive is
    /// read whole, from the start).
    fn reset(&mut self) -> Result<(), Error> {
        self.sink.reset()?;
        self.outcomes.reset();
        Ok(())
    }
}
