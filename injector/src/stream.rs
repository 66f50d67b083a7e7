//! The stream: read → plan → apply → prove → write, one document at a time.
//! Each document is planned ([`crate::plan`]), turned into edits
//! ([`crate::apply`]), proved ([`crate::verify`]) and only then handed to a
//! [`Sink`]. The front ends (files, stdin, KRM, the webhook) all come through
//! here.

use crate::apply::{self, Applied};
use crate::config::Config;
use crate::error::Error;
use crate::plan::{self, Options, Outcome};
use crate::verify;
use crate::yaml::edits::{line_after, Editor};
use crate::yaml::{tolerated, Documents, Node, Pos, YamlError};

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
    };
    run.write_to(src, sink)
}

/// One run's settings.
struct Run<'r> {
    config: &'r Config,
    options: &'r Options,
    faults: Faults,
}

impl Run<'_> {
    fn write_to(&self, src: &str, sink: &mut dyn Sink) -> Result<Report, Error> {
        lone_carriage_returns(src)?;
        // Read strictly first; when that fails where go-yaml (kubectl) is
        // more tolerant, read as go-yaml does — the text itself is edited as
        // it is.
        match self.read_as(src, src, sink) {
            Err(e) => match go_yaml_reads(src, &e) {
                Some(readable) => {
                    sink.reset()?;
                    self.read_as(src, &readable, sink)
                }
                None => Err(e),
            },
            done => done,
        }
    }

    /// [`inject_into`] with `src` read as `readable` (the same bytes but for
    /// line breaks read as spaces).
    fn read_as(&self, src: &str, readable: &str, sink: &mut dyn Sink) -> Result<Report, Error> {
        let first_try = if self.faults.whole_stream {
            Err(Failed::NotStandalone)
        } else {
            self.by_document(src, readable, sink)
        };
        match first_try {
            Ok(report) => Ok(report),
            Err(Failed::Error(e)) => Err(e),
            Err(Failed::NotStandalone) => {
                sink.reset()?;
                self.whole_stream(src, readable, sink)
            }
        }
    }

    fn plan(&self, src: &str, root: &Node) -> Result<Applied, Error> {
        plan_and_apply(src, root, self.config, self.options)
    }

    fn damaged(&self, text: String) -> String {
        match self.faults.sabotage {
            Some(sabotage) => sabotage(&text),
            None => text,
        }
    }
}

/// A carriage return not followed by a line feed is a line break to YAML but
/// not to the edits (which go by LF): such a file is refused, clearly.
fn lone_carriage_returns(src: &str) -> Result<(), Error> {
    let Some(at) = src
        .match_indices('\r')
        .map(|(i, _)| i)
        .find(|i| src.as_bytes().get(i + 1) != Some(&b'\n'))
    else {
        return Ok(());
    };
    let line = src[..at].matches('\n').count() + 1;
    let col = src[..at].rsplit('\n').next().unwrap_or("").chars().count() + 1;
    Err(Error::input(
        Pos { line, col },
        "a carriage return (CR) without a line feed: YAML reads it as a line break, and graceful-inject does not edit files with such line ends; convert them (e.g. with dos2unix or tr '\\r' '\\n')",
    ))
}

/// The stream as go-yaml reads it, when the strict read failed with `e`
/// where go-yaml is more tolerant.
fn go_yaml_reads<'s>(src: &'s str, e: &Error) -> Option<std::borrow::Cow<'s, str>> {
    let pos = e.pos.filter(|_| e.kind == crate::error::Kind::Input)?;
    let as_read = YamlError {
        pos,
        message: e.message.clone(),
    };
    tolerated(src, &as_read)
}

enum Failed {
    Error(Error),
    /// A document's region was not proved on its own.
    NotStandalone,
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Error(e)
    }
}

impl From<YamlError> for Failed {
    fn from(e: YamlError) -> Failed {
        Failed::Error(e.into())
    }
}

impl Run<'_> {
    /// The fast path: region by region.
    fn by_document(
        &self,
        src: &str,
        readable: &str,
        sink: &mut dyn Sink,
    ) -> Result<Report, Failed> {
        let mut outcomes = Vec::new();
        let mut changed = false;
        let mut region_start = 0;
        // The line the region starts on, counted as the regions go by.
        let mut region_line = 1;
        for (index, doc) in Documents::new(readable).enumerate() {
            let Some(root) = doc?.root else { continue };
            let planned = self.plan(src, &root)?;
            outcomes.extend(planned.outcomes);
            let region_end = line_after(src, root.end);
            let first_line = region_line;
            region_line += src[region_start..region_end].matches('\n').count();
            if planned.edits.is_empty() {
                // Nothing planned: the region is written as it was.
                sink.write(&src[region_start..region_end])?;
                region_start = region_end;
                continue;
            }
            changed = true;
            let in_region = &src[region_start..region_end];
            let mut out = String::with_capacity(in_region.len() * 2);
            let end = Editor::apply_into(src, region_start, planned.edits, &mut out)
                .map_err(|what| Error::internal(Some(root.pos), what))?;
            if end > region_end {
                return Err(Failed::Error(Error::internal(
                    Some(root.pos),
                    "an edit reaches past its document",
                )));
            }
            out.push_str(&src[end..region_end]);
            let out = self.damaged(out);
            let origin = verify::Origin {
                document: index,
                line: first_line,
            };
            let region = verify::check_region(
                in_region,
                &out,
                &root,
                &planned.pods,
                !std::ptr::eq(readable, src),
                origin,
                |text, root| self.plan(text, root),
            );
            if let verify::Region::Unproved = region {
                return Err(Failed::NotStandalone);
            }
            sink.write(&out)?;
            region_start = region_end;
        }
        sink.write(&src[region_start..])?;
        Ok(Report { outcomes, changed })
    }

    /// The slower path: the whole output in memory, checked whole.
    fn whole_stream(
        &self,
        src: &str,
        readable: &str,
        sink: &mut dyn Sink,
    ) -> Result<Report, Error> {
        let mut text = String::with_capacity(src.len() + src.len() / 4);
        let mut outcomes = Vec::new();
        let mut applied = 0;
        let mut changed = false;
        for doc in Documents::new(readable) {
            let Some(root) = doc?.root else { continue };
            let planned = self.plan(src, &root)?;
            outcomes.extend(planned.outcomes);
            changed |= !planned.edits.is_empty();
            applied = Editor::apply_into(src, applied, planned.edits, &mut text)
                .map_err(|what| Error::internal(Some(root.pos), what))?;
        }
        text.push_str(&src[applied..]);
        let text = self.damaged(text);
        let origin = verify::Origin {
            document: 0,
            line: 1,
        };
        verify::check(src, readable, &text, origin, |text, root| {
            self.plan(text, root)
        })?;
        sink.write(&text)?;
        Ok(Report { outcomes, changed })
    }
}

/// Plans one document (`root`, read from `src`) and turns the plan into
/// edits: what the run does, and what the proof does again on the output.
pub fn plan_and_apply(
    src: &str,
    root: &Node,
    config: &Config,
    options: &Options,
) -> Result<Applied, Error> {
    apply::document(src, root, plan::document(src, root, config, options)?)
}
