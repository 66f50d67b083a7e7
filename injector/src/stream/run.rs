//! One text's run: read strictly, or as go-yaml reads it where the strict
//! read fails and go-yaml is more tolerant; each document's region planned,
//! edited, proved on its own and written; a region that is not proved on its
//! own sends the whole text down the path that proves it whole.

use super::{plan_and_apply, Faults, Report, Sink};
use crate::apply::Applied;
use crate::config::Config;
use crate::error::Error;
use crate::plan::Options;
use crate::verify;
use crate::yaml::edits::Editor;
use crate::yaml::lines;
use crate::yaml::{tolerated, Documents, Node, Read, YamlError};

/// One run's settings.
pub(super) struct Run<'r> {
    pub(super) config: &'r Config,
    pub(super) options: &'r Options,
    pub(super) faults: Faults,
    /// The index in the whole stream of the text's first document, and the
    /// stream line the text starts on (a text read a document at a time is
    /// one piece of a longer stream): positions are the stream's.
    pub(super) first_document: usize,
    pub(super) first_line: usize,
}

impl Run<'_> {
    pub(super) fn write_to(&self, src: &str, sink: &mut dyn Sink) -> Result<Report, Error> {
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

    /// [`inject_into`](super::inject_into) with `src` read as `read` says.
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
