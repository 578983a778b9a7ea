//! Projection expressions: a list of document paths, checked as DynamoDB checks them, and the
//! item they select (list elements keep their order and are packed together: projecting
//! `a[1]` and `a[3]` gives `a: [a[1], a[3]]`).

use std::collections::BTreeMap;

use super::lexer::{Cursor, PResult, Tok};
use super::path::{check_overlaps, Path, PathElement, RawPath, RANK_UNDEFINED_NAME};
use super::{check_text, ExprError, ExpressionKind, Findings, Placeholders};
use crate::value::{AttributeValue, Item};

const RANK_OVERLAP: u8 = 50;
const RANK_CONFLICT: u8 = 55;

/// A parsed `ProjectionExpression`, names substituted.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    paths: Vec<Path>,
}

fn parse_paths(c: &mut Cursor<'_>) -> PResult<Vec<RawPath>> {
    let mut paths = vec![RawPath::parse(c)?];
    while c.peek() == Tok::Comma {
        c.advance();
        paths.push(RawPath::parse(c)?);
    }
    if c.peek() != Tok::Eof {
        return c.fail();
    }
    Ok(paths)
}

/// What a projection keeps of a value.
enum Picked {
    Whole(AttributeValue),
    Map(BTreeMap<String, Picked>),
    List(BTreeMap<usize, Picked>),
}

impl Picked {
    fn into_value(self) -> AttributeValue {
        match self {
            Picked::Whole(v) => v,
            Picked::Map(m) => AttributeValue::M(m.into_iter().map(|(k, v)| (k, v.into_value())).collect()),
            Picked::List(l) => AttributeValue::L(l.into_values().map(Picked::into_value).collect()),
        }
    }
}

/// Adds the value at `rest` under `value` to `slot`.
fn pick(slot: &mut Option<Picked>, value: &AttributeValue, rest: &[PathElement]) -> bool {
    let Some((first, rest)) = rest.split_first() else {
        *slot = Some(Picked::Whole(value.clone()));
        return true;
    };
    match (first, value) {
        (PathElement::Attr(key), AttributeValue::M(map)) => {
            let Some(child) = map.get(key) else { return false };
            let created = slot.is_none();
            if created {
                *slot = Some(Picked::Map(BTreeMap::new()));
            }
            let Some(Picked::Map(picked)) = slot else { return false };
            let mut entry = picked.remove(key);
            let found = pick(&mut entry, child, rest);
            if let Some(entry) = entry {
                picked.insert(key.clone(), entry);
            }
            if !found && created {
                *slot = None;
            }
            found
        }
        (PathElement::Index(i), AttributeValue::L(list)) => {
            let Some(child) = list.get(*i) else { return false };
            let created = slot.is_none();
            if created {
                *slot = Some(Picked::List(BTreeMap::new()));
            }
            let Some(Picked::List(picked)) = slot else { return false };
            let mut entry = picked.remove(i);
            let found = pick(&mut entry, child, rest);
            if let Some(entry) = entry {
                picked.insert(*i, entry);
            }
            if !found && created {
                *slot = None;
            }
            found
        }
        _ => false,
    }
}

impl Projection {
    /// Parses and checks `text` as DynamoDB does. Marks the names it uses.
    pub fn parse(text: &str, placeholders: &mut Placeholders) -> Result<Projection, ExprError> {
        let kind = ExpressionKind::Projection;
        check_text(kind, text)?;
        let mut cursor = Cursor::new(text);
        let mut raw = parse_paths(&mut cursor).map_err(|e| ExprError::Invalid { kind, reason: cursor.reason(e) })?;
        let mut findings = Findings::default();
        for path in raw.iter_mut() {
            path.check_reserved(&mut findings);
            path.resolve(placeholders, &mut findings, RANK_UNDEFINED_NAME);
        }
        let paths: Vec<Path> = raw.iter().map(|p| p.path().clone()).collect();
        check_overlaps(&paths.iter().collect::<Vec<_>>(), &mut findings, RANK_OVERLAP, RANK_CONFLICT);
        match findings.first() {
            Some(reason) => Err(ExprError::Invalid { kind, reason }),
            None => Ok(Projection { paths }),
        }
    }

    /// A projection of these paths (UpdateItem's `UPDATED_OLD`/`UPDATED_NEW` pick the
    /// paths its update wrote).
    pub fn from_paths(paths: Vec<Path>) -> Projection {
        Projection { paths }
    }

    /// The paths, in the order written.
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }

    /// The part of `item` the projection selects; paths the item lacks are left out.
    pub fn apply(&self, item: &Item) -> Item {
        let mut picked: BTreeMap<String, Picked> = BTreeMap::new();
        for path in &self.paths {
            let name = path.attribute();
            let Some(value) = item.get(name) else { continue };
            let mut slot = picked.remove(name);
            pick(&mut slot, value, &path.0[1..]);
            if let Some(slot) = slot {
                picked.insert(name.to_string(), slot);
            }
        }
        picked.into_iter().map(|(k, v)| (k, v.into_value())).collect()
    }
}
