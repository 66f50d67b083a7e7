//! One admission review: an `AdmissionReview` (admission.k8s.io/v1) for a
//! Pod CREATE in, the same review with a response out — always `allowed:
//! true`. The pod gets exactly what the command line gives the same pod: its
//! JSON goes through the same planning, editing and verification
//! ([`crate::stream`]), and the JSON Patch (RFC 6902) is the difference
//! between the pod and that output, checked by applying it before it is
//! sent. Anything the webhook cannot do safely (a malformed review, a pod it
//! does not understand, a config problem, an internal error) gives no patch
//! and a warning: the webhook never stands between a team and its pods.

use crate::config::{self, Config, ContainerRule, Hook, Rule};
use crate::plan::{Note, Options};
use serde_json::{json, Value};

/// The pod annotations a team sets in its own pod template.
pub const WAIT_ANNOTATION: &str = "graceful-wait.io/wait";
pub const CONTAINER_ANNOTATION: &str = "graceful-wait.io/container";
/// A pod (or its template) labelled `graceful-wait.io/inject: "false"` is
/// never touched; the webhook's own pods carry it.
pub const OPT_OUT_LABEL: &str = "graceful-wait.io/inject";
const DEFAULT_CONTAINER: &str = crate::plan::istio::PROXY;

/// What was decided, for the log line and the metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This patch was sent.
    Patched(Patch),
    /// The pod already had what it should (a re-invocation): empty patch.
    Unchanged,
    /// Nothing asks for this pod, or it opted out; the reason.
    Skipped(String),
    /// The config asks for a hook that the pod's form does not allow (a
    /// preStop it will not replace, a wait it cannot choose): unchanged,
    /// and the creator is told why, as the command line's summary would.
    Refused(String),
    /// The review or the team's annotation is malformed; the pod is allowed
    /// unchanged, with a warning saying what to fix.
    Invalid(String),
    /// Something went wrong on the webhook's side (its config, a bug); the
    /// pod is allowed unchanged, with a warning.
    Error(String),
}

impl Decision {
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Patched(_) => "patched",
            Decision::Unchanged => "unchanged",
            Decision::Skipped(_) => "skipped",
            Decision::Refused(_) => "refused",
            Decision::Invalid(_) => "invalid",
            Decision::Error(_) => "error",
        }
    }
}

/// Who the pod is, for the log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub namespace: String,
    /// The pod's name, or its generateName prefix.
    pub pod: String,
    /// `deployment/web`: the workload whose rule applies.
    pub owner: String,
}

/// The review's answer: the response body and what was decided.
pub struct Answer {
    pub body: Vec<u8>,
    pub decision: Decision,
    pub subject: Subject,
}

/// Answers one review body. Never fails: every problem is an allowed,
/// unpatched answer with a warning.
pub fn answer(body: &[u8], config: &Config) -> Answer {
    let request: Option<Value> = serde_json::from_slice(body).ok();
    let (decision, subject) = match &request {
        None => (
            Decision::Invalid("the body is not JSON".into()),
            Subject::default(),
        ),
        Some(review) => decide(review, config),
    };
    Answer {
        body: response(&uid_of(request.as_ref()), &decision),
        decision,
        subject,
    }
}

/// The answer when the webhook's own config could not be read: allowed,
/// unchanged, and the creator told why.
pub fn unconfigured(body: &[u8], why: &str) -> Answer {
    let request: Option<Value> = serde_json::from_slice(body).ok();
    let decision = Decision::Error(format!("the webhook's config is broken ({why})"));
    Answer {
        body: response(&uid_of(request.as_ref()), &decision),
        decision,
        subject: Subject::default(),
    }
}

/// The answer to a request whose body could not be read whole.
pub fn unreadable(why: &str) -> Answer {
    let decision = Decision::Invalid(why.to_string());
    Answer {
        body: response("", &decision),
        decision,
        subject: Subject::default(),
    }
}

fn uid_of(request: Option<&Value>) -> String {
    request
        .and_then(|r| r.pointer("/request/uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The AdmissionReview answering `uid`: always allowed; the patch and the
/// planning's warnings when there is a patch, the reason when it failed.
fn response(uid: &str, decision: &Decision) -> Vec<u8> {
    let mut response = json!({"uid": uid, "allowed": true});
    match decision {
        Decision::Patched(patch) => {
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(base64(patch.ops.to_string().as_bytes()));
            if !patch.warnings.is_empty() {
                response["warnings"] = json!(patch
                    .warnings
                    .iter()
                    .map(|n| warning(n))
                    .collect::<Vec<_>>());
            }
        }
        Decision::Error(why) | Decision::Invalid(why) | Decision::Refused(why) => {
            response["warnings"] = json!([warning(&format!("no hook added: {why}"))]);
        }
        Decision::Unchanged | Decision::Skipped(_) => {}
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
    .to_string()
    .into_bytes()
}

/// A warning the API server passes to the client (kubectl prints it):
/// short, and naming the tool.
fn warning(why: &str) -> String {
    let mut w = format!("graceful-wait webhook: {why}");
    if w.len() > 250 {
        let mut end = 247;
        while !w.is_char_boundary(end) {
            end -= 1;
        }
        w.truncate(end);
        w.push_str("...");
    }
    w
}

/// A patch, and what the planning warned about (a grace period too short
/// for the wait, …), passed on to whoever creates the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    pub ops: Value,
    pub warnings: Vec<String>,
}

/// The review's decision, step by step: the pod it is about, who it is,
/// its opt-out, its rule, whether planning could find anything, then the
/// planned patch.
fn decide(review: &Value, config: &Config) -> (Decision, Subject) {
    let pod = match pod_of(review) {
        Ok(Some(pod)) => pod,
        Ok(None) => return (Decision::Skipped("not a CREATE".into()), Subject::default()),
        Err(why) => return (Decision::Invalid(why.into()), Subject::default()),
    };
    let request = &review["request"];
    if pod["metadata"]["labels"][OPT_OUT_LABEL] == "false" {
        let why = format!("labelled {OPT_OUT_LABEL}: \"false\"");
        return (
            Decision::Skipped(why),
            subject_of(request, pod, String::new()),
        );
    }
    let (kind, name) = super::owner::workload(pod, config);
    let subject = subject_of(request, pod, format!("{kind}/{name}"));
    let rule = match rule_for(pod, kind, &name, config) {
        Ok(Some(rule)) => rule,
        Ok(None) => {
            let why = "not in the config and no annotation".into();
            return (Decision::Skipped(why), subject);
        }
        Err(why) => return (Decision::Invalid(why), subject),
    };
    let decision = match gate(pod, &rule) {
        Ok(istio_stub) => planned(pod, config, rule, istio_stub),
        Err(why) => Decision::Skipped(why),
    };
    (decision, subject)
}

/// The pod a review is about; None for an operation other than CREATE
/// (which the webhook configuration does not send); why the review is
/// malformed.
fn pod_of(review: &Value) -> Result<Option<&Value>, &'static str> {
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err("not an admission.k8s.io/v1 AdmissionReview");
    }
    let request = &review["request"];
    if request["kind"]["kind"] != "Pod" || request["kind"]["group"] != "" {
        return Err("not a Pod: the webhook configuration should send only pods");
    }
    if request["operation"] != "CREATE" {
        return Ok(None);
    }
    let pod = &request["object"];
    if !pod.is_object() || !pod["spec"].is_object() {
        return Err("the review holds no pod object");
    }
    Ok(Some(pod))
}

/// Who the pod is, for the log line: a pod being created may have only a
/// generateName, and its namespace only in the request.
fn subject_of(request: &Value, pod: &Value, owner: String) -> Subject {
    let meta = &pod["metadata"];
    let text = |a: &Value, b: &Value| {
        a.as_str()
            .or_else(|| b.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Subject {
        namespace: text(&request["namespace"], &meta["namespace"]),
        pod: text(&meta["name"], &meta["generateName"]),
        owner,
    }
}

/// Whether planning could find anything, answered without it: Ok with
/// whether to write Istio's stub, or why not. Istio's sidecar not in the
/// pod yet gets a stub for Istio to merge, but only where the pod itself
/// asks Istio for a sidecar — a stub where no injection comes would be an
/// unpullable image. Otherwise the API server re-invokes this webhook after
/// Istio's (reinvocationPolicy: IfNeeded), and the proxy is patched then.
fn gate(pod: &Value, rule: &Rule) -> Result<bool, String> {
    let meta = &pod["metadata"];
    let asks_istio = |section: &str| meta[section]["sidecar.istio.io/inject"] == "true";
    let istio_stub = (asks_istio("labels") || asks_istio("annotations"))
        && rule
            .containers
            .iter()
            .any(|c| c.name == crate::plan::istio::PROXY);
    // None of the rule's containers is in the pod (the first invocation,
    // before a sidecar is injected, for most pods).
    let present = |name: &str| {
        crate::plan::CONTAINER_LISTS.iter().any(|list| {
            pod["spec"][list].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["name"]
                        .as_str()
                        .is_some_and(|n| crate::config::glob_match(name, n))
                })
            })
        })
    };
    if !istio_stub && !rule.containers.iter().any(|c| present(&c.name)) {
        let names: Vec<&str> = rule.containers.iter().map(|c| c.name.as_str()).collect();
        return Err(format!(
            "no container {} in the pod (yet)",
            names.join(", ")
        ));
    }
    Ok(istio_stub)
}

/// The pod through the same planning, editing and verification as the
/// command line, and the JSON Patch from the pod to that output, checked
/// by applying it before it is sent.
fn planned(pod: &Value, config: &Config, rule: Rule, istio_stub: bool) -> Decision {
    let options = Options {
        istio_stub,
        rule: Some(rule),
        ..Options::default()
    };
    let object = as_created(pod);
    let injected = match crate::stream::inject(&object.to_string(), config, &options) {
        Ok(i) => i,
        Err(e) if e.kind == crate::error::Kind::Internal => return Decision::Error(e.to_string()),
        Err(e) => return Decision::Invalid(e.to_string()),
    };
    let notes = || injected.outcomes.iter().flat_map(|o| &o.notes);
    if !injected.changed {
        let why = notes().find_map(|n| match n {
            Note::Skipped(why) => Some(why.clone()),
            _ => None,
        });
        return why.map_or(Decision::Unchanged, Decision::Refused);
    }
    let ops = match patch_to(&object, &injected.text) {
        Ok(Some(ops)) => ops,
        // A change of the text alone (how it is written, not what it
        // says): nothing to send.
        Ok(None) => return Decision::Unchanged,
        Err(why) => return Decision::Error(format!("internal error: {why}")),
    };
    let warnings = notes()
        .filter_map(|n| match n {
            Note::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    Decision::Patched(Patch { ops, warnings })
}

/// The pod as the command line would read it: without its status (the
/// object as created has none), with its kind.
fn as_created(pod: &Value) -> Value {
    let mut object = pod.clone();
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    if object.get("kind").is_none() {
        object["kind"] = json!("Pod");
        object["apiVersion"] = json!("v1");
    }
    object
}

/// The JSON Patch from `object` to the verified output `text`; None when
/// they mean the same. The patch must make exactly that output.
fn patch_to(object: &Value, text: &str) -> Result<Option<Value>, String> {
    let after: Value =
        serde_json::from_str(text).map_err(|e| format!("the planned pod is not JSON ({e})"))?;
    let patch = super::json_diff::diff(object, &after);
    if patch.as_array().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    let reproduces = serde_json::from_value::<json_patch::Patch>(patch.clone())
        .ok()
        .is_some_and(|p| {
            let mut check = object.clone();
            json_patch::patch(&mut check, &p).is_ok() && check == after
        });
    if !reproduces {
        return Err("the JSON Patch does not reproduce the planned pod".into());
    }
    Ok(Some(patch))
}

/// The pod's rule: its annotation (the team's own choice) wins over the
/// config's rule for its workload.
fn rule_for(
    pod: &Value,
    kind: &'static str,
    name: &str,
    config: &Config,
) -> Result<Option<Rule>, String> {
    let annotations = &pod["metadata"]["annotations"];
    if let Some(value) = annotations[WAIT_ANNOTATION].as_str() {
        let container = match annotations[CONTAINER_ANNOTATION].as_str() {
            Some(named) => named,
            None => mesh_proxy(pod).unwrap_or(DEFAULT_CONTAINER),
        };
        if let Err(why) = config::dns_label(container) {
            return Err(format!("{CONTAINER_ANNOTATION}: {why}"));
        }
        let hook = config::hook_from_text(value)
            .map_err(|e| format!("{WAIT_ANNOTATION}: {}", e.message))?;
        if !matches!(hook, Hook::Wait(_) | Hook::Callback(_)) {
            return Err(format!(
                "{WAIT_ANNOTATION}: give a wait (auto, {{tcp: 8080}}, …); commands and wraps belong in the config"
            ));
        }
        return Ok(Some(Rule {
            kind,
            name: name.to_string(),
            containers: vec![ContainerRule {
                name: container.to_string(),
                hook,
                pos: None,
            }],
        }));
    }
    Ok(config.rule_for(kind, name).cloned())
}

/// The container of `pod` that is a mesh's proxy ([`crate::plan::mesh`]),
/// the one a pod that asks for a wait without naming a container means; of
/// several, the first mesh of the table's (Istio's before a `daprd` beside it).
fn mesh_proxy(pod: &Value) -> Option<&str> {
    use crate::plan::mesh::{recognise_by, PROXIES};
    crate::plan::CONTAINER_LISTS
        .iter()
        .flat_map(|list| pod["spec"][*list].as_array().into_iter().flatten())
        .filter_map(|c| {
            let name = c["name"].as_str()?;
            let proxy = recognise_by(name, c["image"].as_str().unwrap_or_default())?;
            let rank = PROXIES.iter().position(|p| p.key == proxy.key);
            Some((rank, name))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, name)| name)
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
