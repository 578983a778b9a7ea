//! Compiled text patterns: the wildcards (`*`, `?`) and policy variables (`${aws:username}`)
//! that `Action`, `Resource` and condition values may hold, parsed once when a policy is
//! parsed and matched many times without allocating.
//!
//! A variable resolves to the request's value at match time and is matched literally (its `*`
//! is not a wildcard); a variable whose key the request lacks makes the pattern match nothing,
//! as AWS documents for policy variables. ARNs are matched one colon-separated segment at a
//! time (`ArnLike` and `Resource`); a trailing `*` in the last given segment may run past colons.

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    /// Literal text (already lowercased when the pattern is case-insensitive).
    Lit(String),
    /// `*`: any run of characters, empty included.
    Star,
    /// `?`: exactly one character.
    One,
    /// `${key}` or `${key, 'default'}`: the request's single value for `key` (lowercased name).
    Var { key: String, default: Option<String> },
}

/// Looks a policy variable up in the request: its single value, if it has one.
pub(crate) trait Resolve {
    fn resolve(&self, key: &str) -> Option<&str>;
}

/// Compiles `text` into tokens. `wildcards`: whether `*` and `?` are wildcards (they are
/// literal in `StringEquals`); `variables`: whether `${...}` is a variable (only in policies of
/// version 2012-10-17, elsewhere it is literal text).
pub(crate) fn compile(text: &str, wildcards: bool, variables: bool, lowercase: bool) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if variables && rest.starts_with("${") {
            if let Some(end) = rest.find('}') {
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    // AWS's escapes for characters that otherwise have a meaning.
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => {
                        flush(&mut tokens, &mut lit, lowercase);
                        let (key, default) = match inner.split_once(',') {
                            Some((key, default)) => {
                                let default = default.trim().trim_matches('\'').to_string();
                                (key.trim(), Some(default))
                            }
                            None => (inner.trim(), None),
                        };
                        tokens.push(Token::Var { key: key.to_ascii_lowercase(), default });
                    }
                }
                continue;
            }
        }
        rest = &rest[c.len_utf8()..];
        match c {
            '*' if wildcards => {
                flush(&mut tokens, &mut lit, lowercase);
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
            }
            '?' if wildcards => {
                flush(&mut tokens, &mut lit, lowercase);
                tokens.push(Token::One);
            }
            c => lit.push(c),
        }
    }
    flush(&mut tokens, &mut lit, lowercase);
    tokens
}

fn flush(tokens: &mut Vec<Token>, lit: &mut String, lowercase: bool) {
    if !lit.is_empty() {
        let text = std::mem::take(lit);
        tokens.push(Token::Lit(if lowercase { text.to_lowercase() } else { text }));
    }
}

/// Whether every variable of `tokens` resolves (or has a default).
fn resolvable(tokens: &[Token], vars: &dyn Resolve) -> bool {
    tokens.iter().all(|t| match t {
        Token::Var { key, default } => default.is_some() || vars.resolve(key).is_some(),
        _ => true,
    })
}

fn var_text<'a>(key: &str, default: &'a Option<String>, vars: &'a dyn Resolve) -> &'a str {
    vars.resolve(key).or(default.as_deref()).unwrap_or("")
}

/// A position in a token list: token index and byte offset inside a literal or variable.
#[derive(Clone, Copy)]
struct Cursor {
    token: usize,
    offset: usize,
}

enum Atom {
    Char(char, Cursor),
    Star(Cursor),
    One(Cursor),
    End,
}

fn atom(tokens: &[Token], mut at: Cursor, vars: &dyn Resolve) -> Atom {
    loop {
        let Some(token) = tokens.get(at.token) else { return Atom::End };
        let next = Cursor { token: at.token + 1, offset: 0 };
        let text = match token {
            Token::Star => return Atom::Star(next),
            Token::One => return Atom::One(next),
            Token::Lit(text) => text.as_str(),
            Token::Var { key, default } => var_text(key, default, vars),
        };
        match text[at.offset..].chars().next() {
            Some(c) => return Atom::Char(c, Cursor { token: at.token, offset: at.offset + c.len_utf8() }),
            None => at = next,
        }
    }
}

fn same(a: char, b: char, ignore_case: bool) -> bool {
    a == b || (ignore_case && if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(&b) } else { a.to_lowercase().eq(b.to_lowercase()) })
}

/// Whether two strings are equal ignoring case.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b) || (a.chars().count() == b.chars().count() && a.chars().zip(b.chars()).all(|(x, y)| same(x, y, true)))
}

/// Whether `text` matches `tokens` as a whole.
pub(crate) fn matches(tokens: &[Token], text: &str, ignore_case: bool, vars: &dyn Resolve) -> bool {
    resolvable(tokens, vars) && glob(tokens, text, ignore_case, vars)
}

fn glob(tokens: &[Token], text: &str, ignore_case: bool, vars: &dyn Resolve) -> bool {
    match tokens {
        [] => return text.is_empty(),
        [Token::Star] => return true,
        [Token::Lit(lit)] if !ignore_case => return text == lit,
        _ => {}
    }
    let mut p = Cursor { token: 0, offset: 0 };
    let mut t = 0;
    let mut star: Option<(Cursor, usize)> = None;
    loop {
        let here = text[t..].chars().next();
        match (atom(tokens, p, vars), here) {
            (Atom::Star(next), _) => {
                star = Some((next, t));
                p = next;
                continue;
            }
            (Atom::Char(c, next), Some(h)) if same(c, h, ignore_case) => {
                p = next;
                t += h.len_utf8();
                continue;
            }
            (Atom::One(next), Some(h)) => {
                p = next;
                t += h.len_utf8();
                continue;
            }
            (Atom::End, None) => return true,
            _ => {}
        }
        // Mismatch: let the last `*` swallow one more character, if any is left.
        match star {
            Some((after, from)) => match text[from..].chars().next() {
                Some(h) => {
                    star = Some((after, from + h.len_utf8()));
                    p = after;
                    t = from + h.len_utf8();
                }
                None => return false,
            },
            None => return false,
        }
    }
}

/// A pattern matched as a whole string, with a precomputed literal prefix for a fast refusal.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
    /// The literal text before the first wildcard or variable.
    prefix: String,
    /// Whether the pattern is just that literal text.
    literal: bool,
    /// Whether the pattern is a lone `*`.
    any: bool,
}

impl Pattern {
    pub(crate) fn new(tokens: Vec<Token>) -> Self {
        let prefix = match tokens.first() {
            Some(Token::Lit(text)) => text.clone(),
            _ => String::new(),
        };
        let literal = tokens.len() <= 1 && tokens.iter().all(|t| matches!(t, Token::Lit(_)));
        let any = tokens == [Token::Star];
        Self { tokens, prefix, literal, any }
    }

    /// Matches `text`; `ignore_case` compares characters case-insensitively (the pattern's own
    /// literals must then be lowercase).
    pub(crate) fn matches(&self, text: &str, ignore_case: bool, vars: &dyn Resolve) -> bool {
        if self.any {
            return true;
        }
        if self.literal {
            return if ignore_case { eq_ignore_case(text, &self.prefix) } else { text == self.prefix };
        }
        // The literal prefix first: most patterns are refused by it (another service's actions).
        let n = self.prefix.len();
        if self.prefix.is_ascii() {
            let starts = match text.as_bytes().get(..n) {
                Some(head) if ignore_case => head.eq_ignore_ascii_case(self.prefix.as_bytes()),
                Some(head) => head == self.prefix.as_bytes(),
                None => false,
            };
            if !starts {
                return false;
            }
            let rest = if n > 0 { &self.tokens[1..] } else { &self.tokens[..] };
            return text.is_char_boundary(n) && matches(rest, &text[n..], ignore_case, vars);
        }
        matches(&self.tokens, text, ignore_case, vars)
    }
}

/// An ARN pattern: up to six colon-separated segments, each its own token list.
#[derive(Debug, Clone)]
pub(crate) struct ArnPattern {
    segments: Vec<Vec<Token>>,
}

/// The byte ranges of `text`'s colon-separated segments, at most six (the sixth keeps its colons).
fn arn_segments(text: &str) -> ([(usize, usize); 6], usize) {
    let mut out = [(0, 0); 6];
    let mut count = 0;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b':' && count < 5 {
            out[count] = (start, i);
            count += 1;
            start = i + 1;
        }
    }
    out[count] = (start, text.len());
    (out, count + 1)
}

impl ArnPattern {
    /// Splits compiled tokens into ARN segments at their first five literal colons.
    pub(crate) fn new(tokens: Vec<Token>) -> Self {
        let mut segments = vec![Vec::new()];
        for token in tokens {
            match token {
                Token::Lit(text) if segments.len() < 6 && text.contains(':') => {
                    let mut rest = text.as_str();
                    while let Some((head, tail)) = rest.split_once(':').filter(|_| segments.len() < 6) {
                        if !head.is_empty() {
                            segments.last_mut().expect("one segment").push(Token::Lit(head.to_string()));
                        }
                        segments.push(Vec::new());
                        rest = tail;
                    }
                    if !rest.is_empty() {
                        segments.last_mut().expect("one segment").push(Token::Lit(rest.to_string()));
                    }
                }
                token => segments.last_mut().expect("one segment").push(token),
            }
        }
        Self { segments }
    }

    /// Matches an ARN segment by segment (case-sensitive, as AWS compares ARNs).
    pub(crate) fn matches(&self, text: &str, vars: &dyn Resolve) -> bool {
        if !self.segments.iter().all(|s| resolvable(s, vars)) {
            return false;
        }
        let (ranges, count) = arn_segments(text);
        let given = self.segments.len();
        if given == count {
            return self.segments.iter().zip(&ranges[..count]).all(|(seg, &(a, b))| glob(seg, &text[a..b], false, vars));
        }
        // Fewer segments than the ARN: a trailing `*` in the last one runs past the colons.
        if given < count && self.segments.last().and_then(|s| s.last()) == Some(&Token::Star) {
            let (head, last) = self.segments.split_at(given - 1);
            return head.iter().zip(&ranges[..given - 1]).all(|(seg, &(a, b))| glob(seg, &text[a..b], false, vars))
                && glob(&last[0], &text[ranges[given - 1].0..], false, vars);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars(&'static [(&'static str, &'static str)]);
    impl Resolve for Vars {
        fn resolve(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| *v)
        }
    }
    const VARS: Vars = Vars(&[("aws:username", "bob*"), ("aws:userid", "AROAX:sess")]);

    #[test]
    fn wildcards() {
        let check = |p: &str, t: &str, ci: bool| Pattern::new(compile(p, true, true, ci)).matches(t, ci, &VARS);
        assert!(check("s3:Get*", "s3:getobject", true));
        assert!(check("s3:*Object", "S3:PutObject", true));
        assert!(!check("s3:Get*", "s3:PutObject", true));
        assert!(check("iam:*AccessKey*", "iam:CreateAccessKeys", true));
        assert!(check("ec2:Describe?pcs", "ec2:DescribeVpcs", true));
        assert!(!check("ec2:Describe?pcs", "ec2:DescribeVVpcs", true));
        assert!(check("*", "", false));
        assert!(!check("a", "A", false));
        assert!(check("home/${aws:username}/*", "home/bob*/x", false));
        assert!(!check("home/${aws:username}/*", "home/bobby/x", false), "a variable's * is literal");
        assert!(check("a${*}b", "a*b", false));
        assert!(!check("a${*}b", "axb", false));
        assert!(!check("${aws:nope}", "", false), "an absent key matches nothing");
        assert!(check("${aws:nope, 'x'}", "x", false));
    }

    #[test]
    fn arns() {
        let check = |p: &str, t: &str| ArnPattern::new(compile(p, true, true, false)).matches(t, &VARS);
        assert!(check("arn:aws:lambda:*:*:function:*", "arn:aws:lambda:us-east-1:123456789012:function:f"));
        assert!(check("arn:aws:lambda:*:*:function:*", "arn:aws:lambda:us-east-1:123456789012:function:f:prod"));
        assert!(!check("arn:aws:lambda:*:*:function:f", "arn:aws:lambda:us-east-1:123456789012:function:f:prod"));
        assert!(!check("arn:aws:*:us-west-2:*:*", "arn:aws:s3:us-east-1:1:a"), "a * does not cross into the region");
        assert!(check("arn:aws:*:us-east-1:*:*", "arn:aws:s3:us-east-1:1:a"));
        assert!(check("arn:aws:s3:*", "arn:aws:s3:::bucket/key"));
        assert!(check("*", "arn:aws:s3:::bucket/key"));
        assert!(!check("arn:aws:s3:::b*", "arn:aws:s3:us-east-1::b"), "a * stays in its segment");
        assert!(check("arn:aws:s3:::b/${aws:userid}/*", "arn:aws:s3:::b/AROAX:sess/k"));
        assert!(!check("arn:aws:s3:::bucket", "arn:aws:s3:::Bucket"));
    }
}
