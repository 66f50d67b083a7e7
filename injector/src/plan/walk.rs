//! Walks one document — the object, or the items of a `kind: List` (and of a
//! KRM `ResourceList`) — finds each workload's pod template, looks up the
//! rule the config has for it, and plans the pod ([`super::pod`]).

use super::{pod, Note, Options, Outcome, Planned, PodPlan};
use crate::config::{Config, Rule, KINDS};
use crate::error::Error;
use crate::yaml::{tree::shared_nodes, Kind, Node, Step};

/// Where each workload kind keeps its pod spec.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "Pod" => Some(&["spec"]),
        "CronJob" => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
        k if KINDS.iter().any(|(_, name)| *name == k) => Some(&["spec", "template", "spec"]),
        _ => None,
    }
}

/// Plans one document (`root`, read from `src`): an outcome for every
/// object, a plan for every pod template that changes.
pub fn document(
    src: &str,
    root: &Node,
    config: &Config,
    options: &Options,
) -> Result<Planned, Error> {
    let mut walk = Walk {
        src,
        root,
        config,
        options,
        planned: Planned::default(),
    };
    walk.object(root, Vec::new())?;
    Ok(walk.planned)
}

/// One document's walk: what it reads, and what it has planned so far.
struct Walk<'w, 'a> {
    src: &'w str,
    root: &'w Node<'a>,
    config: &'w Config,
    options: &'w Options,
    planned: Planned,
}

impl<'w> Walk<'w, '_> {
    fn outcome(&mut self, object: &str, notes: Vec<Note>) -> usize {
        self.planned.outcomes.push(Outcome {
            object: object.to_string(),
            notes,
        });
        self.planned.outcomes.len() - 1
    }

    /// One object at `at` (the path from the document's root to `node`): a
    /// List's items each in turn, a workload's pod planned, anything else
    /// given the reason it is left alone.
    fn object(&mut self, node: &Node, at: Vec<Step>) -> Result<(), Error> {
        if node.as_map().is_none() {
            if node.as_str().is_some_and(|s| !s.trim().is_empty()) || node.as_seq().is_some() {
                return Err(Error::input(
                    node.pos,
                    "this document is not a Kubernetes object (a mapping with kind and metadata); fix or remove it",
                ));
            }
            return Ok(()); // an empty document
        }
        let kind = node.get("kind").and_then(Node::as_str).unwrap_or_default();
        let name = node.path(&["metadata", "name"]).and_then(Node::as_str);
        // A List's items are objects; so are a KRM ResourceList's (not its
        // functionConfig, which is the function's own).
        if kind == "List" || kind == "ResourceList" {
            return self.items(node, at);
        }
        let label = match name {
            Some(n) => format!("{kind}/{n}"),
            None => kind.to_string(),
        };
        match self.workload(node, kind, name) {
            Ok(workload) => self.pod(workload, label, at),
            Err(why) => {
                self.outcome(&label, vec![Note::Skipped(why)]);
                Ok(())
            }
        }
    }

    /// The items of a List, each an object.
    fn items(&mut self, list: &Node, at: Vec<Step>) -> Result<(), Error> {
        let items = list.get("items").and_then(Node::as_seq).unwrap_or_default();
        for (i, item) in items.iter().enumerate() {
            let mut path = at.clone();
            path.extend([Step::Key("items".into()), Step::Index(i)]);
            self.object(item, path)?;
        }
        Ok(())
    }

    /// The object as a workload to plan — its rule, its pod spec and where
    /// that stands — or why it is left alone.
    fn workload<'n, 'a>(
        &self,
        node: &'n Node<'a>,
        kind: &str,
        name: Option<&str>,
    ) -> Result<Workload<'n, 'a, 'w>, String> {
        let path = pod_spec_path(kind).ok_or("not a workload kind")?;
        // The webhook decides the rule from the pod's owner and annotations;
        // the files' runs look it up by kind and name.
        let rule = match &self.options.rule {
            Some(rule) => Some(rule),
            None => name.and_then(|n| self.config.rule_for(&kind.to_ascii_lowercase(), n)),
        };
        let rule = rule.ok_or("not in the config")?;
        let spec = node
            .path(path)
            .ok_or_else(|| format!("no {}", path.join(".")))?;
        if let Kind::Alias(id) = spec.kind {
            let anchored = shared_nodes(self.root).into_iter().find(|s| s.id == id);
            return Err(format!(
                "its pod spec is an alias (*) of the node anchored at {}: it is edited (or not) where it is defined; write it out in full to hook this workload on its own",
                anchored.map_or("another place".to_string(), |s| s.anchor.to_string())
            ));
        }
        // The pod template's metadata: beside its spec (a Pod's is the
        // object's own).
        let meta = node
            .path(&path[..path.len() - 1])
            .and_then(|template| template.get("metadata"));
        Ok(Workload {
            rule,
            path,
            spec,
            meta,
        })
    }

    /// Plans the workload's pod: its outcome, and its plan when it changes.
    fn pod(&mut self, w: Workload, label: String, at: Vec<Step>) -> Result<(), Error> {
        let mut notes = Vec::new();
        let changes = pod::plan(
            self.src,
            w.spec,
            w.meta,
            w.rule,
            &self.config.settings,
            self.options,
            &mut notes,
        )
        .map_err(|e| Error {
            pos: e.pos.or(Some(w.spec.pos)),
            ..e
        })?;
        let outcome = self.outcome(&label, notes);
        if !changes.is_empty() {
            let mut spec_path = at;
            spec_path.extend(w.path.iter().map(|k| Step::Key(k.to_string())));
            self.planned.pods.push(PodPlan {
                spec: spec_path,
                object: label,
                outcome,
                changes,
            });
        }
        Ok(())
    }
}

/// A workload found in a document, to plan.
struct Workload<'n, 'a, 'w> {
    rule: &'w Rule,
    /// Where its pod spec stands in the object.
    path: &'static [&'static str],
    spec: &'n Node<'a>,
    /// The pod template's metadata.
    meta: Option<&'n Node<'a>>,
}
