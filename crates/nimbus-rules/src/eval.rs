//! The compiled form of a rule and its matching: a tree of objects whose fields hold either a
//! nested object or the leaf conditions of `matcher`, evaluated against JSON documents (with
//! the dialect's reading of objects inside arrays) or against flat name/value sets.

use serde_json::Value;

use crate::matcher::{Leaf, Matcher};
use crate::Scalar;

/// The conditions at one object level: every field, and one alternative of every `$or`.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Node {
    pub(crate) fields: Vec<(String, Field)>,
    pub(crate) ors: Vec<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Field {
    Object(Node),
    /// Conditions of which one must hold for the field's values.
    Leaf(Vec<Matcher>),
}

/// How the fields of a pattern object meet the objects inside an event's arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrays {
    /// All fields of one pattern object must match within the same array element (Event
    /// Ruler's array consistency: EventBridge and Lambda).
    Consistent,
    /// Each field is looked up through every array on its path on its own (SNS's
    /// payload-based filtering).
    Flattened,
}

impl Node {
    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.ors.is_empty()
    }

    /// Whether the objects of `ctx` (the values at this level of the document; non-objects
    /// have no fields) match: with consistent arrays `ctx` holds at most one value.
    pub(crate) fn matches_json(&self, ctx: &[&Value], arrays: Arrays) -> bool {
        let at = |key: &str| ctx.iter().filter_map(|v| v.as_object()?.get(key)).collect::<Vec<_>>();
        self.fields.iter().all(|(key, field)| match field {
            Field::Leaf(matchers) => {
                let mut leaves = Vec::new();
                for v in at(key) {
                    collect(v, &mut |v| leaves.extend(Leaf::of(v)));
                }
                field_matches(matchers, !leaves.is_empty(), &leaves)
            }
            Field::Object(node) => {
                let mut objects = Vec::new();
                for v in at(key) {
                    collect(v, &mut |v| {
                        if v.is_object() {
                            objects.push(v)
                        }
                    });
                }
                match arrays {
                    Arrays::Flattened => node.matches_json(&objects, arrays),
                    Arrays::Consistent if objects.is_empty() => node.matches_json(&[], arrays),
                    Arrays::Consistent => objects.into_iter().any(|o| node.matches_json(&[o], arrays)),
                }
            }
        }) && self.ors.iter().all(|alts| alts.iter().any(|alt| alt.matches_json(ctx, arrays)))
    }

    /// Whether a flat set of names matches; a nested object sees nothing.
    pub(crate) fn matches_flat(&self, lookup: &dyn Fn(&str) -> Option<Vec<Scalar>>) -> bool {
        self.fields.iter().all(|(key, field)| match field {
            Field::Leaf(matchers) => {
                let values = lookup(key);
                let leaves: Vec<Leaf<'_>> = values.iter().flatten().map(Scalar::leaf).collect();
                field_matches(matchers, values.is_some(), &leaves)
            }
            Field::Object(node) => node.matches_flat(&|_| None),
        }) && self.ors.iter().all(|alts| alts.iter().any(|alt| alt.matches_flat(lookup)))
    }
}

/// One condition holds: `exists` on the field's presence, the others on any of its values.
fn field_matches(matchers: &[Matcher], present: bool, leaves: &[Leaf<'_>]) -> bool {
    matchers.iter().any(|m| match m {
        Matcher::Exists(want) => *want == present,
        m => leaves.iter().any(|l| m.matches(*l)),
    })
}

/// Calls `f` on `v`, or on every element of `v` and of the arrays nested in it.
fn collect<'a>(v: &'a Value, f: &mut impl FnMut(&'a Value)) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, f)),
        v => f(v),
    }
}
