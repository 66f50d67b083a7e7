//! `graceful-inject krm`: graceful-inject as a KRM function, for kustomize
//! (an exec or container function) and `kpt fn eval`, as the KRM Functions
//! Specification has it (kubernetes-sigs/kustomize
//! `cmd/config/docs/api-conventions/functions-spec.md`):
//!
//! - a `ResourceList` on stdin; its `items` are rewritten as manifests are,
//!   so comments and every annotation (`config.kubernetes.io/*`,
//!   `internal.config.kubernetes.io/*`) stay as they were — the function only
//!   adds the hooks, the init container and the volumes;
//! - the config is the `functionConfig`: a ConfigMap whose `data.config`
//!   holds graceful-inject's config (the same format as the config file);
//! - the same `ResourceList` on stdout, with what graceful-inject did as its
//!   `results` (warnings as `severity: warning`, the rest as `info`);
//! - on any error, a message on stderr, nothing on stdout, a non-zero exit.

use crate::error::{Error, Kind};
use crate::plan::{Note, Options, Outcome};
use crate::yaml::emit::{self, Value};
use crate::{config, stream, yaml};

/// The key of the functionConfig ConfigMap's data that holds the config.
pub const CONFIG_KEY: &str = "config";

/// The output ResourceList for `input`, or the error for stderr.
pub fn run(input: &str, options: &Options) -> Result<String, Error> {
    let stdin = |e: Error| e.in_file("<stdin>");
    // About stdin as a whole: no place to name.
    let not_a_list = |what: &str| Error {
        kind: Kind::Input,
        file: None,
        pos: None,
        message: what.into(),
    };
    let readable = yaml::tolerant(input);
    let mut documents = yaml::Documents::new(&readable);
    let first = documents
        .next()
        .ok_or_else(|| not_a_list("stdin holds no ResourceList"))?
        .map_err(|e| stdin(e.into()))?;
    for later in documents {
        let later = later.map_err(|e| stdin(e.into()))?;
        if later.root.is_some_and(|r| r.as_map().is_some()) {
            return Err(not_a_list(
                "stdin holds more than one document; a KRM function reads one ResourceList",
            ));
        }
    }
    let root = first
        .root
        .ok_or_else(|| not_a_list("stdin holds an empty document, not a ResourceList"))?;
    if root.get("kind").and_then(|k| k.as_str()) != Some("ResourceList") {
        return Err(not_a_list("stdin is not a ResourceList (kind: ResourceList); run graceful-inject SOURCE CONFIG for plain manifests"));
    }
    let config = function_config(&root)?;
    let had_results = root.get("results").is_some();
    // JSON (YAML's flow style) is valid input too; its results are added in kind.
    let flow = readable[root.start..].starts_with('{');
    let injected = stream::inject(input, &config, options).map_err(stdin)?;
    let mut out = injected.text;
    let closing = out
        .trim_end()
        .len()
        .checked_sub(1)
        .filter(|&i| out[i..].starts_with('}'));
    let findings = results(&injected.outcomes);
    match (had_results, flow, closing) {
        (false, false, _) => {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&block_results(&findings));
        }
        (false, true, Some(at)) => {
            out.insert_str(at, &format!(",\"results\":{}", flow_results(&findings)));
        }
        // Another function's results are not ours to replace (nor a flow
        // document we cannot find the end of): ours go to stderr.
        _ => {
            eprint!("{}", crate::front::report::summary(&injected.outcomes));
            return Ok(out);
        }
    }
    // The items were checked by the injector; the results were added after
    // that check, so the whole is read back before it is written.
    reads_back(&out, findings.len()).map_err(|why| {
        Error::internal(
            None,
            format!("the ResourceList with its results would not read back ({why})"),
        )
    })?;
    Ok(out)
}

/// Whether `out` is one ResourceList whose `results` hold `expected` entries.
fn reads_back(out: &str, expected: usize) -> std::result::Result<(), String> {
    let readable = yaml::tolerant(out);
    let mut roots = Vec::new();
    for doc in yaml::Documents::new(&readable) {
        let doc = doc.map_err(|e| e.to_string())?;
        if let Some(root) = doc.root.filter(|r| r.as_map().is_some()) {
            roots.push(root);
        }
    }
    let [root] = roots.as_slice() else {
        return Err(format!("{} documents", roots.len()));
    };
    let results = root
        .get("results")
        .and_then(|r| r.as_seq())
        .map_or(0, |r| r.len());
    if root.get("kind").and_then(|k| k.as_str()) != Some("ResourceList") || results != expected {
        return Err(format!("{results} results for {expected}"));
    }
    Ok(())
}

/// graceful-inject's config, from the functionConfig ConfigMap's `data.config`.
fn function_config(root: &yaml::Node) -> Result<config::Config, Error> {
    let how = "give the config as a ConfigMap functionConfig with data.config holding graceful-inject's config";
    let function_config = root.get("functionConfig").ok_or_else(|| {
        Error::config(
            None,
            format!("the ResourceList has no functionConfig; {how}"),
        )
    })?;
    let at = |what: String| Error::config(Some(function_config.pos), what).in_file("<stdin>");
    if function_config.get("kind").and_then(|k| k.as_str()) != Some("ConfigMap") {
        return Err(at(format!("functionConfig is not a ConfigMap; {how}")));
    }
    let text = function_config
        .path(&["data", CONFIG_KEY])
        .and_then(|c| c.as_str())
        .ok_or_else(|| at(format!("functionConfig has no data.{CONFIG_KEY}; {how}")))?;
    config::parse(text)
        .map_err(|e| Error::of_config(e).in_file(format!("functionConfig data.{CONFIG_KEY}")))
}

/// One result: the summary line, and its severity.
struct Finding {
    message: String,
    severity: &'static str,
}

/// The results: one a note, worded as the summary's lines
/// (`changed Deployment/x: …`); warnings are warnings.
fn results(outcomes: &[Outcome]) -> Vec<Finding> {
    outcomes
        .iter()
        .flat_map(|o| o.notes.iter().map(move |note| (o, note)))
        .map(|(o, note)| {
            let (tag, text) = crate::front::report::tag(note);
            Finding {
                message: format!("graceful-inject: {tag} {}: {text}", o.object),
                severity: match note {
                    Note::Warning(_) => "warning",
                    _ => "info",
                },
            }
        })
        .collect()
}

/// The results as YAML values: a mapping each, its message and severity.
fn as_values(results: &[Finding]) -> Vec<Value> {
    results
        .iter()
        .map(|r| {
            emit::map(vec![
                ("message", emit::string(r.message.as_str())),
                ("severity", emit::string(r.severity)),
            ])
        })
        .collect()
}

/// `results:` as a block sequence.
fn block_results(results: &[Finding]) -> String {
    if results.is_empty() {
        return "results: []\n".into();
    }
    let mut out = String::from("results:\n");
    let style = emit::Style {
        indentless_seq: true,
    };
    emit::sequence(&mut out, &as_values(results), 0, style);
    out
}

/// The results as JSON.
fn flow_results(results: &[Finding]) -> String {
    emit::json(&Value::Seq(as_values(results)))
}

#[cfg(test)]
mod tests {
    use super::{block_results, flow_results, reads_back, results};

    #[test]
    fn results_that_would_not_read_back_are_caught() {
        let list = "kind: ResourceList\nitems: []\n";
        assert_eq!(reads_back(&format!("{list}results: []\n"), 0), Ok(()));
        // After a document end marker, the results would be a second document.
        assert!(reads_back(&format!("{list}...\nresults: []\n"), 0).is_err());
        assert!(reads_back(&format!("{list}results: []\n"), 1).is_err());
    }

    #[test]
    fn the_summary_becomes_results() {
        use crate::plan::{Note, Outcome};
        let outcome = |object: &str, note: Note| Outcome {
            object: object.into(),
            notes: vec![note],
        };
        let r = block_results(&results(&[
            outcome(
                "Deployment/a",
                Note::Changed("istio-proxy: preStop ← x".into()),
            ),
            outcome("Deployment/b", Note::Warning("\"timeout\"".into())),
        ]));
        assert_eq!(
            r,
            "results:\n- message: \"graceful-inject: changed Deployment/a: istio-proxy: preStop ← x\"\n  severity: info\n- message: \"graceful-inject: warning Deployment/b: \\\"timeout\\\"\"\n  severity: warning\n"
        );
        assert_eq!(block_results(&results(&[])), "results: []\n");
        assert_eq!(
            flow_results(&results(&[outcome("D/a", Note::Changed("x".into()))])),
            "[{\"message\": \"graceful-inject: changed D/a: x\", \"severity\": \"info\"}]"
        );
    }
}
