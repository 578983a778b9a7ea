//! CloudWatch Logs' filter pattern syntax, parsed once per request (or per filter) and matched
//! against every event: term patterns (`ERROR timeout`, `"Task timed out"`, `?ERROR ?WARN`,
//! `-DEBUG`), JSON patterns (`{ $.level = "ERROR" && $.latency > 100 }`, in `json`) and
//! space-delimited patterns (`[ip, user, ..., status = 4*, bytes > 1000]`, in `delimited`).
//! An empty pattern matches everything. Matching a stored line can first be ruled out by the
//! literals every match must contain ([`FilterPattern::may_match_line`]), so a search reads
//! most lines without decoding them.

mod delimited;
mod json;

use std::collections::BTreeMap;

/// A read position in a pattern's text, shared by the JSON and space-delimited parsers
/// (each adds its own grammar to it).
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Lexer<'a> {
        Lexer { s, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start().len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }
}

/// Why a filter pattern was refused; AWS answers `InvalidParameterException` with this text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError;

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Invalid filter pattern")
    }
}

impl std::error::Error for PatternError {}

/// A parsed filter pattern.
#[derive(Debug, Clone)]
pub struct FilterPattern {
    kind: Kind,
    /// Text every matching message contains (checked before decoding anything).
    required: Vec<Literal>,
}

#[derive(Debug, Clone)]
enum Kind {
    All,
    Nothing,
    /// Alternatives (`?` starts one): an event matches if one group matches.
    Terms(Vec<Group>),
    /// The expression, and what its selectors reach (all a match needs decoded).
    Json(json::Expr, json::Wanted),
    Delimited(delimited::Pattern),
}

/// Terms that must all appear and terms that must not.
#[derive(Debug, Clone, Default)]
struct Group {
    must: Vec<String>,
    must_not: Vec<String>,
}

/// A literal a matching message must contain. A JSON string value may be written with escapes
/// (`\u0041`, `\/`), so a message with a backslash can match without holding the literal.
#[derive(Debug, Clone)]
struct Literal {
    text: String,
    escapable: bool,
}

/// What a match found: the JSON document or the named fields, for metric values, dimensions
/// and TestMetricFilter's `extractedValues`.
#[derive(Debug)]
pub enum Matched<'p> {
    Text,
    Json(serde_json::Value),
    Fields(Vec<(&'p str, String)>),
}

impl Matched<'_> {
    /// The text of `$.a.b[0]` (JSON) or `$field` (space-delimited); None if there is none.
    pub fn value(&self, selector: &str) -> Option<String> {
        match self {
            Matched::Text => None,
            Matched::Json(doc) => {
                let path = json::Selector::parse(selector).ok()?;
                match path.resolve(doc)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Null => None,
                    other => Some(other.to_string()),
                }
            }
            Matched::Fields(fields) => {
                let name = selector.strip_prefix('$')?;
                fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
            }
        }
    }

    /// TestMetricFilter's `extractedValues`: a space-delimited pattern's named fields as `$name`.
    pub fn extracted(&self) -> BTreeMap<String, String> {
        match self {
            Matched::Fields(fields) => fields.iter().map(|(n, v)| (format!("${n}"), v.clone())).collect(),
            _ => BTreeMap::new(),
        }
    }
}

impl Default for FilterPattern {
    fn default() -> Self {
        FilterPattern { kind: Kind::All, required: Vec::new() }
    }
}

impl FilterPattern {
    /// Parses a pattern as AWS does, or says it is invalid.
    pub fn parse(pattern: &str) -> Result<FilterPattern, PatternError> {
        let p = pattern.trim();
        if p.is_empty() {
            return Ok(FilterPattern::default());
        }
        if p.starts_with('{') {
            let body = p.strip_prefix('{').and_then(|b| b.strip_suffix('}')).ok_or(PatternError)?;
            let expr = json::Expr::parse(body)?;
            let required = expr.required().into_iter().map(|text| Literal { text, escapable: true }).collect();
            let wanted = expr.wanted();
            return Ok(FilterPattern { kind: Kind::Json(expr, wanted), required });
        }
        if p.starts_with('[') {
            let body = p.strip_prefix('[').and_then(|b| b.strip_suffix(']')).ok_or(PatternError)?;
            let pattern = delimited::Pattern::parse(body)?;
            let required = pattern.required().into_iter().map(|text| Literal { text, escapable: false }).collect();
            return Ok(FilterPattern { kind: Kind::Delimited(pattern), required });
        }
        parse_terms(p)
    }

    /// A pattern no event matches (for a stored one that no longer parses).
    pub fn nothing() -> FilterPattern {
        FilterPattern { kind: Kind::Nothing, required: Vec::new() }
    }

    /// Whether `message` matches.
    pub fn matches(&self, message: &str) -> bool {
        if !self.may_contain(message) {
            return false;
        }
        match &self.kind {
            Kind::All => true,
            Kind::Nothing => false,
            Kind::Terms(groups) => groups.iter().any(|g| g.matches(message)),
            Kind::Json(expr, wanted) => wanted.document(message).is_some_and(|doc| expr.eval(&doc)),
            Kind::Delimited(p) => p.match_fields(message).is_some(),
        }
    }

    /// Whether `message` matches, and what the match found.
    pub fn evaluate(&self, message: &str) -> Option<Matched<'_>> {
        if !self.may_contain(message) {
            return None;
        }
        match &self.kind {
            Kind::All => Some(Matched::Text),
            Kind::Nothing => None,
            Kind::Terms(groups) => groups.iter().any(|g| g.matches(message)).then_some(Matched::Text),
            // The whole document: metric values and dimensions name members of their own.
            Kind::Json(expr, _) => json::document(message).filter(|doc| expr.eval(doc)).map(Matched::Json),
            Kind::Delimited(p) => p.match_fields(message).map(Matched::Fields),
        }
    }

    /// Whether a message may match, judged from its literals alone.
    fn may_contain(&self, message: &str) -> bool {
        self.required.iter().all(|l| message.contains(l.text.as_str()) || (l.escapable && message.contains('\\')))
    }

    /// Whether the event stored as `line` (its JSON-lines form, message escaped) may match:
    /// false only when a literal every match contains is missing. A literal without quotes,
    /// backslashes or control characters appears in the escaped line exactly when it appears
    /// in the message; a message with a backslash shows it doubled.
    pub fn may_match_line(&self, line: &str) -> bool {
        if matches!(self.kind, Kind::Json(..)) && !object_message(line) {
            return false;
        }
        self.required.iter().all(|l| line.contains(l.text.as_str()) || (l.escapable && line.contains(r"\\")))
    }

    /// Whether this is a JSON or space-delimited pattern (which can extract values).
    pub fn extracts(&self) -> bool {
        matches!(self.kind, Kind::Json(..) | Kind::Delimited(_))
    }

    /// Whether a metric value or dimension `selector` can be taken from this pattern's
    /// matches: `$.…` from JSON patterns, `$name` of one of a space-delimited pattern's fields.
    pub fn has_selector(&self, selector: &str) -> bool {
        match &self.kind {
            Kind::Json(..) => selector.starts_with("$.") && json::Selector::parse(selector).is_ok(),
            Kind::Delimited(p) => selector.strip_prefix('$').is_some_and(|n| p.names().any(|f| f == n)),
            _ => false,
        }
    }
}

impl Group {
    fn matches(&self, message: &str) -> bool {
        self.must.iter().all(|t| message.contains(t.as_str())) && !self.must_not.iter().any(|t| message.contains(t.as_str()))
    }
}

/// Whether a stored line's message (`"m":"…"`, escaped) may be a JSON object: it starts with
/// `{` after any whitespace. A line not of that form is not ruled out.
fn object_message(line: &str) -> bool {
    let Some(at) = line.find(r#""m":""#) else { return true };
    let mut rest = &line[at + 5..];
    loop {
        rest = rest.trim_start_matches(' ');
        match rest.get(..2) {
            Some(r"\n" | r"\t" | r"\r") => rest = &rest[2..],
            _ => return rest.starts_with('{'),
        }
    }
}

/// Whether a character may appear in a term written without quotes: AWS asks for quotes
/// around terms with other characters.
fn bare_term_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '@' | '#' | '=' | ',' | ';')
}

/// Whether a literal can be looked for in an escaped stored line as it is.
fn searchable(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c == '"' || c == '\\' || c.is_control())
}

fn parse_terms(p: &str) -> Result<FilterPattern, PatternError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut chars = p.chars().peekable();
    let mut started = false;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut alternative = false;
        let mut negate = false;
        if c == '?' {
            alternative = true;
            chars.next();
        }
        if chars.peek() == Some(&'-') {
            negate = true;
            chars.next();
        }
        let term = if chars.peek() == Some(&'"') {
            chars.next();
            let mut t = String::new();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => t.push(chars.next().ok_or(PatternError)?),
                    c => t.push(c),
                }
            }
            if !closed || t.is_empty() {
                return Err(PatternError);
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err(PatternError);
            }
            t
        } else {
            let mut t = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if !bare_term_char(c) {
                    return Err(PatternError);
                }
                t.push(c);
                chars.next();
            }
            if t.is_empty() {
                return Err(PatternError);
            }
            t
        };
        if alternative || !started {
            groups.push(Group::default());
            started = true;
        }
        let g = groups.last_mut().expect("a group was started");
        if negate {
            g.must_not.push(term);
        } else {
            g.must.push(term);
        }
    }
    // `" "` (a phrase of spaces) matches every event, as AWS documents.
    if groups.len() == 1 && groups[0].must_not.is_empty() && groups[0].must.iter().all(|t| t.trim().is_empty()) {
        return Ok(FilterPattern::default());
    }
    let required = if groups.len() == 1 {
        groups[0].must.iter().filter(|t| searchable(t)).map(|t| Literal { text: t.clone(), escapable: false }).collect()
    } else {
        Vec::new()
    };
    Ok(FilterPattern { kind: Kind::Terms(groups), required })
}

/// `*` matches any run of characters (none included); everything else matches itself.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == text;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if text.len() < first.len() + last.len() || !text.starts_with(first) || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The pieces of a wildcard value every match contains.
pub(crate) fn glob_literals(pattern: &str) -> impl Iterator<Item = String> + '_ {
    pattern.split('*').filter(|s| searchable(s)).map(str::to_string)
}

/// A comparison operator of JSON and space-delimited patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    /// Reads an operator at the start of `s`, returning it and its length.
    pub(crate) fn lex(s: &str) -> Option<(Op, usize)> {
        Some(match s.as_bytes() {
            [b'!', b'=', ..] => (Op::Ne, 2),
            [b'<', b'=', ..] => (Op::Le, 2),
            [b'>', b'=', ..] => (Op::Ge, 2),
            [b'=', ..] => (Op::Eq, 1),
            [b'<', ..] => (Op::Lt, 1),
            [b'>', ..] => (Op::Gt, 1),
            _ => return None,
        })
    }

    fn numeric(self, a: f64, b: f64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Gt => a > b,
            Op::Le => a <= b,
            Op::Ge => a >= b,
        }
    }
}

/// The value a comparison compares with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Number(f64),
    /// A string, possibly with `*` wildcards.
    Text(String),
}

impl Operand {
    /// A bare value: a number if it reads as one, else text.
    pub(crate) fn bare(s: &str) -> Operand {
        match s.parse::<f64>() {
            Ok(n) if !s.contains('*') && n.is_finite() => Operand::Number(n),
            _ => Operand::Text(s.to_string()),
        }
    }

    /// Whether `op` holds between a value (its text, or its number when it has one) and this.
    pub(crate) fn compare(&self, op: Op, text: &str, number: Option<f64>) -> bool {
        match (self, op) {
            (Operand::Number(n), _) => number.or_else(|| text.parse().ok()).is_some_and(|v| op.numeric(v, *n)),
            (Operand::Text(t), Op::Eq) => glob(t, text),
            (Operand::Text(t), Op::Ne) => !glob(t, text),
            // Only numbers are ordered.
            (Operand::Text(_), _) => false,
        }
    }

    /// The literals every value equal to this contains (for `=` only).
    pub(crate) fn literals(&self, op: Op) -> Vec<String> {
        match (self, op) {
            (Operand::Text(t), Op::Eq) => glob_literals(t).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message of AWS's JSON examples (FilterAndPatternSyntax).
    const DOC: &str = r#"{"eventType":"UpdateTrail","sourceIPAddress":"111.111.111.111","arrayKey":["value","another value"],"objectList":[{"name":"a","id":1},{"name":"some name","id":2}],"SomeObject":null,"ThisFlag":true,"bandwidth":80,"latency":40,"refreshRate":60,"user":{"id":1,"email":"John.Stiles@example.com"},"users":[{"id":2,"email":"John.Doe@example.com"},{"id":3,"email":"Jane.Doe@example.com"}],"actions":["GET","PUT","DELETE"],"coordinates":[[0,1,2],[4,5,6],[7,8,9]]}"#;
    /// AWS's space-delimited example: an Apache access log line.
    const APACHE: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#;
    const APACHE_404: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /index.html HTTP/1.0" 404 2048"#;

    fn check(cases: &[(&str, &str, bool)]) {
        for (pattern, message, want) in cases {
            let p = FilterPattern::parse(pattern).unwrap_or_else(|_| panic!("{pattern:?} parses"));
            assert_eq!(p.matches(message), *want, "{pattern:?} on {message:?}");
            assert_eq!(p.evaluate(message).is_some(), *want, "{pattern:?} evaluated on {message:?}");
            // The prefilter never rules out a match, on the message or on its stored line.
            let line = serde_json::to_string(&serde_json::json!({"t": 1, "i": 2, "m": message})).unwrap();
            if *want {
                assert!(p.may_match_line(&line), "{pattern:?} prefilter on {line:?}");
            }
        }
    }

    #[test]
    fn term_patterns() {
        check(&[
            ("", "anything", true),
            ("   ", "anything", true),
            ("\" \"", "nospace", true),
            ("ERROR", "[ERROR 400] BAD REQUEST", true),
            ("ERROR", "[INFO 200] OK", false),
            ("ERROR", "error in lower case", false),
            ("ERROR ARGUMENTS", "[ERROR 400] BAD ARGUMENTS", true),
            ("ERROR ARGUMENTS", "[ERROR 401] UNAUTHORIZED REQUEST", false),
            ("?ERROR ?ARGUMENTS", "[ERROR 401] UNAUTHORIZED REQUEST", true),
            ("?ERROR ?ARGUMENTS", "[INFO] BAD ARGUMENTS", true),
            ("?ERROR ?ARGUMENTS", "[INFO 200] OK", false),
            ("\"INTERNAL SERVER ERROR\"", "[ERROR 500] INTERNAL SERVER ERROR", true),
            ("\"INTERNAL SERVER ERROR\"", "[ERROR 500] INTERNAL ERROR", false),
            ("ERROR -ARGUMENTS", "[ERROR 401] UNAUTHORIZED REQUEST", true),
            ("ERROR -ARGUMENTS", "[ERROR 400] BAD ARGUMENTS", false),
            ("\"Task timed out\"", "x Task timed out after 3.00 seconds", true),
            ("REPORT -Init", "REPORT RequestId: 1\tInit Duration: 2 ms", false),
            ("REPORT -Init", "REPORT RequestId: 1", true),
            // `?` starts an alternative; terms after it belong to it (CDK's anyTermGroup).
            ("?ERROR Exception ?WARN", "ERROR without", false),
            ("?ERROR Exception ?WARN", "ERROR with Exception", true),
            ("?ERROR Exception ?WARN", "a WARN", true),
            ("?ERROR -timeout ?WARN", "ERROR timeout", false),
            ("\"say \\\"hi\\\"\"", "they say \"hi\"", true),
            ("1534", APACHE, true),
        ]);
    }

    #[test]
    fn json_patterns() {
        check(&[
            (r#"{ $.eventType = "UpdateTrail" }"#, DOC, true),
            (r#"{ $.eventType = UpdateTrail }"#, DOC, true),
            (r#"{ $.eventType = "Update*" }"#, DOC, true),
            (r#"{ $.eventType = "*Trail" }"#, DOC, true),
            (r#"{ $.eventType = "*dateT*" }"#, DOC, true),
            (r#"{ $.eventType = "CreateTrail" }"#, DOC, false),
            (r#"{ $.eventType != "CreateTrail" }"#, DOC, true),
            (r#"{ $.sourceIPAddress != 123.123.* }"#, DOC, true),
            (r#"{ $.sourceIPAddress = 111.111.* }"#, DOC, true),
            (r#"{ $.arrayKey[0] = "value" }"#, DOC, true),
            (r#"{ $.arrayKey[1] = "another value" }"#, DOC, true),
            (r#"{ $.arrayKey[2] = "value" }"#, DOC, false),
            (r#"{ $.objectList[1].id = 2 }"#, DOC, true),
            (r#"{ $.objectList[1].name = "some name" }"#, DOC, true),
            (r#"{ $.SomeObject IS NULL }"#, DOC, true),
            (r#"{ $.eventType IS NULL }"#, DOC, false),
            (r#"{ $.SomeOtherObject NOT EXISTS }"#, DOC, true),
            (r#"{ $.SomeObject NOT EXISTS }"#, DOC, false),
            (r#"{ $.ThisFlag IS TRUE }"#, DOC, true),
            (r#"{ $.ThisFlag IS FALSE }"#, DOC, false),
            (r#"{ $.bandwidth > 75 }"#, DOC, true),
            (r#"{ $.latency < 50 }"#, DOC, true),
            (r#"{ $.refreshRate = 60 }"#, DOC, true),
            (r#"{ $.refreshRate = 6e1 }"#, DOC, true),
            (r#"{ $.refreshRate != 60 }"#, DOC, false),
            (r#"{ $.bandwidth >= 80 && $.latency <= 40 }"#, DOC, true),
            (r#"{ $.bandwidth > 80 }"#, DOC, false),
            // Only numbers are ordered; a missing member compares with nothing.
            (r#"{ $.eventType > 1 }"#, DOC, false),
            (r#"{ $.missing != "x" }"#, DOC, false),
            (r#"{ $.missing < 1 }"#, DOC, false),
            // AWS's compound examples: && binds tighter than ||.
            (r#"{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }"#, DOC, true),
            (r#"{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }"#, DOC, false),
            (r#"{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && $.actions[2] = "nomatch" }"#, DOC, true),
            (
                r#"{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && $.actions[2] = "nomatch" }"#,
                DOC,
                false,
            ),
            (r#"{ $.coordinates[2][0] = 7 }"#, DOC, true),
            (r#"{ $.user.email = * }"#, DOC, true),
            // A message that is not a JSON object never matches a JSON pattern.
            (r#"{ $.eventType = "UpdateTrail" }"#, "eventType UpdateTrail", false),
            (r#"{ $.eventType NOT EXISTS }"#, "not json", false),
            (r#"{ $.a = "b" }"#, r#"{"a":"\u0062"}"#, true),
            (r#"{$.level="ERROR"&&$.ms>100}"#, r#"{"level":"ERROR","ms":150}"#, true),
            (r#"{ $.level = "ERROR" }"#, " \n\t {\"level\": \"ERROR\"}\n", true),
            (r#"{ $.level = "ERROR" }"#, "[\"level\", \"ERROR\"]", false),
        ]);
    }

    #[test]
    fn space_delimited_patterns() {
        check(&[
            ("[ip, user, username, timestamp, request, status_code, bytes]", APACHE, true),
            ("[ip, user, username, timestamp, request, status_code]", APACHE, false),
            ("[ip, user, username, timestamp, request = \"*html*\", status_code = 4*, bytes]", APACHE_404, true),
            ("[ip, user, username, timestamp, request = \"*html*\", status_code = 4*, bytes]", APACHE, false),
            ("[ip, user, username, timestamp, request, status_code = 404, bytes > 1000]", APACHE_404, true),
            ("[ip, user, username, timestamp, request, status_code = 404, bytes > 3000]", APACHE_404, false),
            ("[ip, user, username, timestamp, request = \"GET*\", status_code != 200, bytes]", APACHE_404, true),
            ("[ip, user, username, timestamp, request = \"GET*\", status_code != 200, bytes]", APACHE, false),
            ("[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]", APACHE_404, false),
            ("[ip, user, username, timestamp, request, status_code = 4*, bytes >= 2048 && bytes < 4096]", APACHE_404, true),
            ("[ip, user, username, timestamp, request, status_code = 2* || status_code = 4*, bytes]", APACHE_404, true),
            ("[ip, user, username, timestamp, request, status_code = 3* || status_code = 5*, bytes]", APACHE_404, false),
            ("[ip, ..., status_code = 404, bytes]", APACHE_404, true),
            ("[..., status_code, bytes > 2000]", APACHE_404, true),
            ("[ip = 127.0.0.1, ...]", APACHE, true),
            ("[ip = 10.*, ...]", APACHE, false),
            ("[..., request = \"*gif*\", ...]", APACHE, true),
            ("[timestamp=*Z, request_id=\"*-*\", event]", "2024-01-01T00:00:00Z abc-def hello", true),
            ("[w1 = ERROR, w2]", "ERROR something", true),
            ("[w1 = ERROR, w2]", "ERROR two words", false),
            ("[]", "anything at all", true),
        ]);
    }

    #[test]
    fn bad_patterns() {
        for bad in [
            "\"unterminated",
            "\"\"",
            "email!domain",
            "a)b",
            "{ $.a = 1",
            "{ }",
            "{ $.a }",
            "{ a = 1 }",
            "{ $.a = }",
            "{ $.a == 1 }",
            "{ $.a = 1 && }",
            "{ ($.a = 1 }",
            "{ $.a IS MAYBE }",
            "{ $.a[x] = 1 }",
            "{ $.a = 1 } trailing",
            "[a, b",
            "[a,, b]",
            "[a = ]",
            "[a b]",
            "[a = 1 &&]",
        ] {
            assert_eq!(FilterPattern::parse(bad).map(|_| ()), Err(PatternError), "{bad:?}");
        }
    }

    #[test]
    fn extracted_values() {
        let p = FilterPattern::parse("[ip, user, username, timestamp, request, status_code, bytes]").unwrap();
        let m = p.evaluate(APACHE).unwrap();
        assert_eq!(m.value("$bytes").as_deref(), Some("1534"));
        assert_eq!(m.value("$request").as_deref(), Some("GET /apache_pb.gif HTTP/1.0"));
        assert_eq!(m.value("$timestamp").as_deref(), Some("10/Oct/2000:13:25:15 -0700"));
        assert_eq!(m.extracted().get("$status_code").map(String::as_str), Some("200"));
        assert_eq!(m.extracted().len(), 7);
        let p = FilterPattern::parse(r#"{ $.latency > 1 }"#).unwrap();
        let m = p.evaluate(DOC).unwrap();
        assert_eq!(m.value("$.latency").as_deref(), Some("40"));
        assert_eq!(m.value("$.user.email").as_deref(), Some("John.Stiles@example.com"));
        assert_eq!(m.value("$.nothing"), None);
        assert!(m.extracted().is_empty());
        assert!(p.has_selector("$.a.b[0]"));
        assert!(!p.has_selector("$a"));
        let p = FilterPattern::parse("[a, b]").unwrap();
        assert!(p.has_selector("$b") && !p.has_selector("$c") && !p.has_selector("$.b"));
    }

    #[test]
    fn globs() {
        for (pattern, text, want) in [
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "ac", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "acb", false),
            ("ab*ba", "aba", false),
            ("abc", "abc", true),
            ("abc", "abcd", false),
        ] {
            assert_eq!(glob(pattern, text), want, "{pattern:?} on {text:?}");
        }
    }
}
