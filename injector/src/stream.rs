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
use crate::yaml::edits::Editor;
use crate::yaml::lines;
use crate::yaml::{tolerated, Documents, Node, Pos, Read, YamlError};

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

/// One run's settings.
struct Run<'r> {
    config: &'r Config,
    options: &'r Options,
    faults: Faults,
    /// The index in the whole stream of the text's first document, and the
    /// stream line the text starts on (a text read a document at a time is
    /// one piece of a longer stream): positions are the stream's.
    first_document: usize,
    first_line: usize,
}

impl Run<'_> {
    fn write_to(&self, src: &str, sink: &mut dyn Sink) -> Result<Report, Error> {
        lone_carriage_returns(src, self.first_line)?;
        // Read strictly first; when that fails where go-yaml (kubectl) is
        // more tolerant, read as go-yaml does — the text itself is edited as
        // it is.
        match self.read_as(src, Read::AsWritten, sink) {
            Err(e) => match go_yaml_reads(src, &e, self.first_line) {
                Some(readable) => {
                    sink.reset()?;
                    self.read_as(src, Read::AsGoYaml(&readable), sink)
                }
                None => Err(e),
            },
            done => done,
        }
    }

    /// [`inject_into`] with `src` read as `read` says.
    fn read_as(&self, src: &str, read: Read<'_>, sink: &mut dyn Sink) -> Result<Report, Error> {
        let first_try = if self.faults.whole_stream {
            Err(Failed::NotStandalone)
        } else {
            self.by_document(src, read, sink)
        };
        match first_try {
            Ok(report) => Ok(report),
            Err(Failed::Error(e)) => Err(e),
            Err(Failed::NotStandalone) => {
                sink.reset()?;
                self.whole_stream(src, read, sink)
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
fn lone_carriage_returns(src: &str, first_line: usize) -> Result<(), Error> {
    let Some(at) = lines::lone_carriage_return(src) else {
        return Ok(());
    };
    Err(Error::input(
        lines::pos(src, at).in_stream(first_line),
        "a carriage return (CR) without a line feed: YAML reads it as a line break, and graceful-inject does not edit files with such line ends; convert them (e.g. with dos2unix or tr '\\r' '\\n')",
    ))
}

/// The stream as go-yaml reads it, when the strict read failed with `e`
/// where go-yaml is more tolerant.
fn go_yaml_reads<'s>(
    src: &'s str,
    e: &Error,
    first_line: usize,
) -> Option<std::borrow::Cow<'s, str>> {
    let pos = e.pos.filter(|_| e.kind == crate::error::Kind::Input)?;
    // The tolerance reads lines of `src`.
    let as_read = YamlError {
        pos: Some(pos.in_piece(first_line)?),
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
        read: Read<'_>,
        sink: &mut dyn Sink,
    ) -> Result<Report, Failed> {
        let mut outcomes = Vec::new();
        let mut changed = false;
        let mut region_start = 0;
        // The line the region starts on, counted as the regions go by.
        let mut region_line = self.first_line;
        let mut documents = 0;
        for (index, doc) in Documents::starting_at(read.text(src), self.first_line).enumerate() {
            documents = index + 1;
            let Some(root) = doc?.root else { continue };
            let mut planned = self.plan(src, &root)?;
            outcomes.extend(planned.outcomes);
            let region_end = lines::after(src, root.end);
            let first_line = region_line;
            region_line += lines::breaks(&src[region_start..region_end]);
            if planned.edits.is_empty() {
                // Nothing planned: the region is written as it was.
                sink.write(&src[region_start..region_end])?;
                region_start = region_end;
                continue;
            }
            changed = true;
            let in_region = &src[region_start..region_end];
            let mut out = String::with_capacity(in_region.len() * 2);
            let end = Editor::apply_into(src, region_start, &mut planned.edits, &mut out)
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
                document: self.first_document + index,
                line: first_line,
            };
            let reading = if read.tolerant() {
                verify::Reading::Tolerant
            } else if self.faults.read_all {
                verify::Reading::Whole
            } else {
                verify::Reading::Windows
            };
            let written = verify::Written {
                src,
                region: (region_start, region_end),
                out: &out,
                edits: &planned.edits,
                plans: &planned.pods,
            };
            let region = verify::check_region(&written, root, reading, origin, |text, root| {
                self.plan(text, root)
            });
            if let verify::Region::Unproved = region {
                return Err(Failed::NotStandalone);
            }
            sink.write(&out)?;
            region_start = region_end;
        }
        sink.write(&src[region_start..])?;
        Ok(Report {
            outcomes,
            changed,
            documents,
        })
    }

    /// The slower path: the whole output in memory, checked whole.
    fn whole_stream(
        &self,
        src: &str,
        read: Read<'_>,
        sink: &mut dyn Sink,
    ) -> Result<Report, Error> {
        let mut text = String::with_capacity(src.len() + src.len() / 4);
        let mut outcomes = Vec::new();
        let mut applied = 0;
        let mut changed = false;
        let mut documents = 0;
        for doc in Documents::starting_at(read.text(src), self.first_line) {
            documents += 1;
            let Some(root) = doc?.root else { continue };
            let mut planned = self.plan(src, &root)?;
            outcomes.extend(planned.outcomes);
            changed |= !planned.edits.is_empty();
            applied = Editor::apply_into(src, applied, &mut planned.edits, &mut text)
                .map_err(|what| Error::internal(Some(root.pos), what))?;
        }
        text.push_str(&src[applied..]);
        let text = self.damaged(text);
        let origin = verify::Origin {
            document: self.first_document,
            line: self.first_line,
        };
        verify::check(src, read, &text, origin, |text, root| self.plan(text, root))?;
        sink.write(&text)?;
        Ok(Report {
            outcomes,
            changed,
            documents,
        })
    }
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

/// [`inject_into`] for a stream read from `input` a document at a time, so
/// that memory follows the largest document however long the stream is:
/// the input is cut before each line that starts a document (`---` at the
/// start of a line, which YAML forbids inside any scalar or collection),
/// and each piece is planned, edited, proved and written to `to` on its
/// own, its outcomes handed there as it goes. Returns whether anything
/// changed.
///
/// Pieces are independent, so they are handled `threads` at a time, each on
/// a thread of its own (0: as many as there are cores, at most
/// [`MAX_WORKERS`]; 1: one after the other, on this thread); what they give
/// is written in the stream's order, and a run ends at the first error in
/// that order, as one at a time would.
///
/// A directive (`%YAML`, `%TAG`) applies to the document after it, across
/// such a cut: a stream that holds one is read whole and handled by
/// [`inject_into`] (what was read so far is kept in an unnamed temporary
/// file for that, never in memory).
pub fn inject_from(
    input: &mut dyn std::io::BufRead,
    config: &Config,
    options: &Options,
    threads: usize,
    mut to: Destination<'_>,
) -> Result<bool, Error> {
    let workers = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS)),
        n => n,
    };
    std::thread::scope(|scope| {
        let mut pieces = Pieces::new(config, options);
        if workers > 1 {
            pieces.start_workers(scope, workers);
        }
        read_pieces(input, &mut pieces, &mut to)
    })
}

/// Threads that handle pieces, at most, unless asked for more.
pub const MAX_WORKERS: usize = 4;

fn read_pieces(
    input: &mut dyn std::io::BufRead,
    pieces: &mut Pieces,
    to: &mut Destination<'_>,
) -> Result<bool, Error> {
    use std::io::Write;
    let read_error = |e: std::io::Error| Error::io(format!("cannot read the input: {e}"));
    let spool_error = |e: std::io::Error| {
        Error::io(format!(
            "cannot keep the input in a temporary file: {e}; check TMPDIR"
        ))
    };
    let mut spool = std::io::BufWriter::new(tempfile::tempfile().map_err(spool_error)?);
    // The piece being read, as bytes: its text is checked for UTF-8 once,
    // whole, when it is complete.
    let mut bytes = Vec::new();
    let (mut first_line, mut has_content) = (1, false);
    let mut line_no = 1;
    // An error in reading comes after the pieces before it: theirs first.
    let in_order = |pieces: &mut Pieces, to: &mut Destination<'_>, e| {
        pieces.finish(to)?;
        Err(e)
    };
    loop {
        let mut start = bytes.len();
        match input.read_until(b'\n', &mut bytes) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return in_order(pieces, to, read_error(e)),
        }
        if let Err(e) = spool.write_all(&bytes[start..]) {
            return in_order(pieces, to, spool_error(e));
        }
        if bytes[start] == b'%' {
            pieces.finish(to)?;
            let mut whole = spool
                .into_inner()
                .map_err(|e| spool_error(e.into_error()))?;
            return read_whole(&mut whole, input, pieces.config, pieces.options, to);
        }
        if has_content && starts_a_document(&bytes[start..]) {
            let next = bytes.split_off(start);
            let piece = match piece(std::mem::replace(&mut bytes, next), first_line) {
                Ok(piece) => piece,
                Err(e) => return in_order(pieces, to, e),
            };
            pieces.handle(piece, to)?;
            (start, first_line, has_content) = (0, line_no, false);
        }
        has_content = has_content || !is_blank_or_comment(&bytes[start..]);
        line_no += 1;
    }
    match piece(bytes, first_line) {
        Ok(last) => pieces.handle(last, to)?,
        Err(e) => return in_order(pieces, to, e),
    }
    pieces.finish(to)?;
    Ok(pieces.changed)
}

/// The piece read as `bytes`, which starts on the stream's line
/// `first_line`; invalid UTF-8 is an error at its line and column.
fn piece(bytes: Vec<u8>, first_line: usize) -> Result<Piece, Error> {
    let text = utf8_from(bytes, first_line)?;
    Ok(Piece { text, first_line })
}

/// A piece of the input: its text (whole lines) and the line it starts on.
struct Piece {
    text: String,
    first_line: usize,
}

/// A piece handled: its proved output and report, or its error.
type Handled = Result<(String, Report), Error>;

/// Pieces go to the workers in batches of about this many bytes (or one
/// piece, when it is larger): a thread woken for each small document would
/// spend as much time waking as working.
const BATCH_BYTES: usize = 64 * 1024;

/// A batch of pieces, numbered in the stream's order.
type Batch = (usize, Vec<Piece>);

/// A batch handled: each piece with what it gave, numbered as it was sent.
type BatchHandled = (usize, Vec<(Piece, Handled)>);

/// The pieces handled so far, and those being handled.
struct Pieces<'r> {
    config: &'r Config,
    options: &'r Options,
    documents: usize,
    changed: bool,
    /// Where batches go to the workers (none: each piece is handled as it
    /// comes).
    work: Option<std::sync::mpsc::SyncSender<Batch>>,
    done: Option<std::sync::mpsc::Receiver<BatchHandled>>,
    /// The batch being filled, and its size.
    batch: Vec<Piece>,
    batch_bytes: usize,
    /// Batches sent, and written (in order), so far.
    sent: usize,
    written: usize,
    /// Batches handled out of order, until those before them are written.
    waiting: std::collections::BTreeMap<usize, Vec<(Piece, Handled)>>,
    /// Batches sent and not yet written, at most (their text and output
    /// are what memory holds).
    in_flight: usize,
}

impl<'r> Pieces<'r> {
    fn new(config: &'r Config, options: &'r Options) -> Self {
        Pieces {
            config,
            options,
            documents: 0,
            changed: false,
            work: None,
            done: None,
            batch: Vec::new(),
            batch_bytes: 0,
            sent: 0,
            written: 0,
            waiting: std::collections::BTreeMap::new(),
            in_flight: 0,
        }
    }

    /// `workers` threads that handle the batches sent to them. A worker
    /// does not know how many documents came before its piece, which only
    /// an error message says: a piece that fails is handled again, in
    /// order, to place its error in the stream.
    fn start_workers<'s>(&mut self, scope: &'s std::thread::Scope<'s, '_>, workers: usize)
    where
        'r: 's,
    {
        let (work, jobs) = std::sync::mpsc::sync_channel::<Batch>(workers);
        let (results, done) = std::sync::mpsc::channel();
        let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs));
        let (config, options) = (self.config, self.options);
        for _ in 0..workers {
            let (jobs, results) = (jobs.clone(), results.clone());
            scope.spawn(move || loop {
                let job = match jobs.lock() {
                    Ok(jobs) => jobs.recv(),
                    Err(_) => return,
                };
                let Ok((number, batch)) = job else { return };
                let handled = batch
                    .into_iter()
                    .map(|piece| {
                        let handled = handle_piece(config, options, &piece, 0);
                        (piece, handled)
                    })
                    .collect();
                if results.send((number, handled)).is_err() {
                    return;
                }
            });
        }
        self.work = Some(work);
        self.done = Some(done);
        self.in_flight = 2 * workers;
    }

    /// One piece: handled now, or put in the batch for the workers (and
    /// what they have handled written, in order, while too many batches
    /// are out).
    fn handle(&mut self, piece: Piece, to: &mut Destination<'_>) -> Result<(), Error> {
        if self.work.is_none() {
            let handled = handle_piece(self.config, self.options, &piece, self.documents);
            return self.write(&piece, handled, to);
        }
        self.batch_bytes += piece.text.len();
        self.batch.push(piece);
        if self.batch_bytes >= BATCH_BYTES {
            self.send(to)?;
        }
        Ok(())
    }

    /// Sends the batch to the workers.
    fn send(&mut self, to: &mut Destination<'_>) -> Result<(), Error> {
        let stopped = || Error::internal(None, "a thread that handles documents stopped");
        let batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        let work = self.work.as_ref().ok_or_else(stopped)?;
        work.send((self.sent, batch)).map_err(|_| stopped())?;
        self.sent += 1;
        while self.sent - self.written > self.in_flight {
            self.receive(to)?;
        }
        Ok(())
    }

    /// Waits for the next batch handled, and writes every batch that is
    /// next in order.
    fn receive(&mut self, to: &mut Destination<'_>) -> Result<(), Error> {
        let stopped = || Error::internal(None, "a thread that handles documents stopped");
        let (number, handled) = self
            .done
            .as_ref()
            .ok_or_else(stopped)?
            .recv()
            .map_err(|_| stopped())?;
        self.waiting.insert(number, handled);
        while let Some(batch) = self.waiting.remove(&self.written) {
            for (piece, handled) in batch {
                self.write(&piece, handled, to)?;
            }
            self.written += 1;
        }
        Ok(())
    }

    /// Writes every piece sent (in order): the end of the stream, or of
    /// reading it a piece at a time.
    fn finish(&mut self, to: &mut Destination<'_>) -> Result<(), Error> {
        if !self.batch.is_empty() {
            self.send(to)?;
        }
        self.work = None;
        while self.written < self.sent {
            self.receive(to)?;
        }
        Ok(())
    }

    /// A handled piece's output and outcomes, in the stream's order; a
    /// piece that failed is handled again here, with the documents before
    /// it counted, so that its error is placed in the stream.
    fn write(
        &mut self,
        piece: &Piece,
        handled: Handled,
        to: &mut Destination<'_>,
    ) -> Result<(), Error> {
        let (out, report) = match handled {
            Ok(done) => done,
            Err(_) => handle_piece(self.config, self.options, piece, self.documents)?,
        };
        to.write(&out)?;
        self.documents += report.documents;
        self.changed |= report.changed;
        for outcome in report.outcomes {
            to.push(outcome);
        }
        Ok(())
    }
}

/// One piece, as a stream of its own (its first document the stream's
/// `first_document`): its output, proved, and what it did.
fn handle_piece(
    config: &Config,
    options: &Options,
    piece: &Piece,
    first_document: usize,
) -> Handled {
    let run = Run {
        config,
        options,
        faults: Faults::default(),
        first_document,
        first_line: piece.first_line,
    };
    // The piece's output is held until it is proved: a retry (go-yaml's
    // reading, the proof of the piece whole) starts it over.
    let mut out = String::with_capacity(piece.text.len() + piece.text.len() / 2);
    let report = run.write_to(&piece.text, &mut out)?;
    Ok((out, report))
}

/// A stream with a directive: everything read so far (in `spool`) and the
/// rest of `input`, whole, through [`inject_into`].
fn read_whole(
    spool: &mut std::fs::File,
    input: &mut dyn std::io::BufRead,
    config: &Config,
    options: &Options,
    to: &mut Destination<'_>,
) -> Result<bool, Error> {
    use std::io::{Read, Seek};
    let io = |e: std::io::Error| Error::io(format!("cannot read the input: {e}"));
    let mut bytes = Vec::new();
    spool.rewind().map_err(io)?;
    spool.read_to_end(&mut bytes).map_err(io)?;
    input.read_to_end(&mut bytes).map_err(io)?;
    let text = utf8(bytes)?;
    to.reset()?;
    let report = inject_into(&text, config, options, to.sink)?;
    for outcome in report.outcomes {
        to.push(outcome);
    }
    Ok(report.changed)
}

/// The text of `bytes`; invalid UTF-8 is an input error at its line and
/// column.
pub(crate) fn utf8(bytes: Vec<u8>) -> Result<String, Error> {
    utf8_from(bytes, 1)
}

/// [`utf8`] for text that starts on the stream's line `first_line`.
fn utf8_from(bytes: Vec<u8>, first_line: usize) -> Result<String, Error> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        // The text up to the bad byte is UTF-8: its last line counts columns
        // in characters, as every other position does.
        let good = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
        not_utf8(lines::pos(good, valid).in_stream(first_line))
    })
}

/// Invalid UTF-8 at `pos`.
fn not_utf8(pos: Pos) -> Error {
    Error::input(
        pos,
        "not UTF-8 text (Kubernetes manifests are UTF-8); convert the file, e.g. with iconv",
    )
}

/// `---` at the start of a line, alone or before white space: a document
/// starts there, whatever came before (YAML forbids the marker as content).
fn starts_a_document(line: &[u8]) -> bool {
    line.strip_prefix(b"---")
        .is_some_and(|rest| rest.is_empty() || matches!(rest[0], b' ' | b'\t' | b'\r' | b'\n'))
}

fn is_blank_or_comment(line: &[u8]) -> bool {
    match line.iter().find(|b| !b.is_ascii_whitespace()) {
        None => true,
        Some(b) => *b == b'#',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{check_region, read_again, Origin, Reading, Region, Written};

    /// A hook, a mount, a volume and an init container added to an
    /// Istio-style pod are proved by reading again only the lines around
    /// them, and damage there is not proved.
    #[test]
    fn the_usual_edits_are_proved_by_small_windows() {
        let mut src = String::from(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: istio-init\n        image: proxyv2\n      containers:\n      - name: app\n        image: app\n      - name: istio-proxy\n        image: proxyv2\n        args:\n",
        );
        for i in 0..200 {
            src.push_str(&format!("        - --flag-{i}\n"));
        }
        src.push_str("        volumeMounts:\n        - name: data\n          mountPath: /data\n      volumes:\n      - name: data\n        emptyDir: {}\n");
        let config = crate::config::parse(
            "graceful-wait:\n  native-sidecars: wait\ndeployment:\n  shop:\n    istio-proxy: {tcp: 15090}\n",
        )
        .unwrap();
        let options = Options::default();
        let plan = |text: &str, root: &Node| plan_and_apply(text, root, &config, &options);
        let root = || Documents::new(&src).next().unwrap().unwrap().root.unwrap();
        let mut applied = plan(&src, &root()).unwrap();
        assert!(!applied.edits.is_empty());
        let mut out = String::new();
        let end = Editor::apply_into(&src, 0, &mut applied.edits, &mut out).unwrap();
        out.push_str(&src[end..]);
        let region = (0, src.len());
        let read = read_again(&src, region, &root(), &applied.edits, &out).unwrap();
        assert!(
            read * 4 < out.len(),
            "{read} of {} bytes read again",
            out.len()
        );
        let origin = Origin {
            document: 0,
            line: 1,
        };
        let prove = |out: &str| {
            let written = Written {
                src: &src,
                region,
                out,
                edits: &applied.edits,
                plans: &applied.pods,
            };
            check_region(&written, root(), Reading::Windows, origin, plan)
        };
        assert!(matches!(prove(&out), Region::Proved));
        let damaged = out.replacen(
            "        - name: graceful-wait\n",
            "       - name: graceful-wait\n",
            1,
        );
        assert_ne!(damaged, out);
        assert!(matches!(prove(&damaged), Region::Unproved));
    }
}
