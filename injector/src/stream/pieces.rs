//! A stream read from a reader a document at a time: cut before each line
//! that starts a document, each piece handled on its own (by a pool of
//! workers) and written in the stream's order. A stream with a directive is
//! read whole, since the directive reaches across the cut.

use super::{inject_into, Destination, Faults, Report, Run};
use crate::config::Config;
use crate::error::Error;
use crate::plan::Options;
use crate::yaml::{lines, Pos};

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
