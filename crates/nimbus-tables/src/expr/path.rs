//! Document paths (`a.#b[2].c`): how expressions name a place in an item, as written (with
//! `#name` placeholders still in it) and as resolved, and how a resolved path reads an item.

use std::fmt;

use super::lexer::{Cursor, PResult, Tok};
use super::{Findings, Placeholders, Reason};
use crate::reserved::is_reserved;
use crate::value::{AttributeValue, Item};

/// One step of a resolved path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A map key (or, first, an attribute name).
    Attr(String),
    /// A list index.
    Index(usize),
}

/// A resolved document path: starts with an attribute name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// The top-level attribute this path starts at.
    pub fn attribute(&self) -> &str {
        match &self.0[0] {
            PathElement::Attr(name) => name,
            PathElement::Index(_) => unreachable!("a path starts with a name"),
        }
    }

    /// The value at this path in `item`, if the path leads somewhere.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let mut current = item.get(self.attribute())?;
        for element in &self.0[1..] {
            current = match (element, current) {
                (PathElement::Attr(key), AttributeValue::M(map)) => map.get(key)?,
                (PathElement::Index(i), AttributeValue::L(list)) => list.get(*i)?,
                _ => return None,
            };
        }
        Some(current)
    }
}

/// AWS's rendering in error texts: `[a, b, [1]]`.
impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, element) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match element {
                PathElement::Attr(name) => f.write_str(name)?,
                PathElement::Index(index) => write!(f, "[{index}]")?,
            }
        }
        f.write_str("]")
    }
}

/// A path as written.
#[derive(Clone, Debug)]
pub(crate) struct RawPath {
    pub elements: Vec<RawElement>,
    /// Filled by [`RawPath::resolve`].
    pub resolved: Option<Path>,
}

#[derive(Clone, Debug)]
pub(crate) enum RawElement {
    /// A bare name, checked against the reserved words.
    Ident(String),
    /// `#name`.
    Name(String),
    Index(usize),
}

/// Ranks of the path checks in [`Findings`] (shared by every expression kind).
pub(crate) const RANK_RESERVED: u8 = 30;
pub(crate) const RANK_UNDEFINED_NAME: u8 = 40;

impl RawPath {
    /// `name ( . name | [ digits ] )*`, names being identifiers or `#placeholders`.
    pub fn parse(cursor: &mut Cursor<'_>) -> PResult<RawPath> {
        let mut elements = vec![parse_name(cursor)?];
        loop {
            match cursor.peek() {
                Tok::Dot => {
                    cursor.advance();
                    elements.push(parse_name(cursor)?);
                }
                Tok::LBracket => {
                    cursor.advance();
                    if cursor.peek() != Tok::Number {
                        return cursor.fail();
                    }
                    let index = cursor.text().parse::<usize>().unwrap_or(usize::MAX);
                    cursor.advance();
                    cursor.expect(Tok::RBracket)?;
                    elements.push(RawElement::Index(index));
                }
                _ => return Ok(RawPath { elements, resolved: None }),
            }
        }
    }

    /// Reserved words used as names.
    pub fn check_reserved(&self, findings: &mut Findings) {
        for element in &self.elements {
            if let RawElement::Ident(name) = element {
                if is_reserved(name) {
                    findings.add(RANK_RESERVED, Reason::ReservedKeyword(name.clone()));
                }
            }
        }
    }

    /// Substitutes `#names`, marking them used; an undefined one is a finding.
    pub fn resolve(&mut self, placeholders: &mut Placeholders, findings: &mut Findings, rank: u8) {
        let mut resolved = Vec::with_capacity(self.elements.len());
        for element in &self.elements {
            resolved.push(match element {
                RawElement::Ident(name) => PathElement::Attr(name.clone()),
                RawElement::Index(i) => PathElement::Index(*i),
                RawElement::Name(key) => match placeholders.name(key) {
                    Some(name) => {
                        let name = name.clone();
                        placeholders.mark_name(key);
                        PathElement::Attr(name)
                    }
                    None => {
                        findings.add(rank, Reason::UndefinedName(key.clone()));
                        PathElement::Attr(key.clone())
                    }
                },
            });
        }
        self.resolved = Some(Path(resolved));
    }

    pub fn path(&self) -> &Path {
        self.resolved.as_ref().expect("paths are resolved before use")
    }
}

fn parse_name(cursor: &mut Cursor<'_>) -> PResult<RawElement> {
    let element = match cursor.peek() {
        Tok::Ident => RawElement::Ident(cursor.text().to_string()),
        Tok::Name => RawElement::Name(cursor.text().to_string()),
        _ => return cursor.fail(),
    };
    cursor.advance();
    Ok(element)
}

/// Overlap and conflict between the paths of an update or a projection, as DynamoDB checks
/// them pairwise in order (dynalite `checkPaths`): a conflict is one level used as both a map
/// key and a list index; an overlap is one path equal to or inside another.
pub(crate) fn check_overlaps(paths: &[&Path], findings: &mut Findings, overlap_rank: u8, conflict_rank: u8) {
    for (j, later) in paths.iter().enumerate() {
        for earlier in &paths[..j] {
            let mut diverged = false;
            for (a, b) in earlier.0.iter().zip(later.0.iter()) {
                match (a, b) {
                    (PathElement::Attr(_), PathElement::Index(_)) | (PathElement::Index(_), PathElement::Attr(_)) => {
                        findings.add(conflict_rank, Reason::PathsConflict(earlier.to_string(), later.to_string()));
                        diverged = true;
                        break;
                    }
                    _ if a != b => {
                        diverged = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !diverged {
                findings.add(overlap_rank, Reason::PathsOverlap(earlier.to_string(), later.to_string()));
            }
        }
    }
}
