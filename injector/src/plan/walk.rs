//! Walks one document — the object, or the items of a `kind: List` (and of a
//! KRM `ResourceList`) — finds each workload's pod template, looks up the
//! rule the config has for it, and plans the pod ([`super::pod`]).

use super::{pod, Note, Options, Outcome, Planned, PodPlan};
use crate::config::{Config, KINDS};
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

impl Walk<'_, '_> {
    fn outcome(&mut self, object: &str, notes: Vec<Note>) -> usize {
        self.planned.outcomes.push(Outcome {
            object: object.to_string(),
            notes,
        });
        self.planned.outcomes.len() - 1
    }

    /// `at` is the path from the document's root to `node`.
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
        let label = match name {
            Some(n) => format!("{kind}/{n}"),
            None => kind.to_string(),
        };
        // A List's items are objects; so are a KRM ResourceList's (not its
        // functionConfig, which is the function's own).
        if kind == "List" || kind == "ResourceList" {
            for (i, item) in node
                .get("items")
                .and_then(Node::as_seq)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                let mut path = at.clone();
                path.extend([Step::Key("items".into()), Step::Index(i)]);
                self.object(item, path)?;
            }
            return Ok(());
        }
        let skipped = |why: String| vec![Note::Skipped(why)];
        let Some(path) = pod_spec_path(kind) else {
            self.outcome(&label, skipped("not a workload kind".into()));
            return Ok(());
        };
        let config_kind = kind.to_ascii_lowercase();
        // The webhook decides the rule from the pod's owner and annotations;
        // the files' runs look it up by kind and name.
        let rule = match &self.options.rule {
            Some(rule) => Some(rule),
            None => name.and_then(|n| self.config.rule_for(&config_kind, n)),
        };
        let Some(rule) = rule else {
            self.outcome(&label, skipped("not in the config".into()));
            return Ok(());
        };
        let Some(spec) = node.path(path) else {
            self.outcome(&label, skipped(format!("no {}", path.join("."))));
            return Ok(());
        };
        if let Kind::Alias(id) = spec.kind {
            let anchored = shared_nodes(self.root).into_iter().find(|s| s.id == id);
            self.outcome(&label, skipped(format!(
                "its pod spec is an alias (*) of the node anchored at {}: it is edited (or not) where it is defined; write it out in full to hook this workload on its own",
                anchored.map_or("another place".to_string(), |s| s.anchor.to_string())
            )));
            return Ok(());
        }
        let mut notes = Vec::new();
        // The pod template's metadata: beside its spec (a Pod's is the
        // object's own).
        let meta = node
            .path(&path[..path.len() - 1])
            .and_then(|template| template.get("metadata"));
        let changes = pod::plan(
            self.src,
            spec,
            meta,
            rule,
            &self.config.settings,
            self.options,
            &mut notes,
        )
        .map_err(|e| Error {
            pos: e.pos.or(Some(spec.pos)),
            ..e
        })?;
        let outcome = self.outcome(&label, notes);
        if !changes.is_empty() {
            let mut spec_path = at;
            spec_path.extend(path.iter().map(|k| Step::Key(k.to_string())));
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
