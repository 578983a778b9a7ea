//! CloudWatch metric math: GetMetricData's `Expression` queries, parsed once and evaluated
//! over the time series the other queries returned. The common part of AWS's language:
//! arithmetic (`+ - * / ^`, unary minus) between series and scalars (series meet on their
//! timestamps), arrays (`[m1, m2]`, `METRICS()`, `METRICS("str")`), the aggregates `SUM`,
//! `AVG`, `MIN`, `MAX`, `STDDEV` (over one series: a scalar; over an array: a series),
//! `ABS`, `CEIL`, `FLOOR`, `LOG`, `LOG10`, `RATE`, `DIFF`, `RUNNING_SUM`, `FILL` (a number,
//! `REPEAT` or `LINEAR`), `PERIOD` and `TIME_SERIES`.

use std::collections::BTreeMap;

/// One time series: value by timestamp (ms), ascending.
pub type Series = BTreeMap<i64, f64>;

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Series(Series),
    /// Several series, each with its query id (as `METRICS()` returns them).
    Array(Vec<(String, Series)>),
}

/// The named results an expression may refer to, and the time grid it is evaluated on.
pub struct Context<'a> {
    /// Every query's result by id, in query order (metric queries and expressions done so far).
    pub results: &'a [(String, Value)],
    /// The ids of queries that are metrics (`METRICS()` returns those), in order.
    pub metric_ids: &'a [String],
    /// Labels of the metric queries, by id (for `METRICS("str")`).
    pub labels: &'a BTreeMap<String, String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period_s: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Number(f64),
    Str(String),
    Id(String),
    Neg(Box<Expr>),
    Binary(char, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Array(Vec<Expr>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression(Expr);

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Str(String),
    Word(String),
    Op(char),
}

fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Number(text.parse().map_err(|_| format!("Invalid number: {text}"))?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..].iter().position(|&d| d == c).ok_or("Unterminated string")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "+-*/^(),[]".contains(c) {
            out.push(Token::Op(c));
            i += 1;
        } else {
            return Err(format!("Unrecognized character: {c}"));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, op: char) -> bool {
        if self.peek() == Some(&Token::Op(op)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: char) -> Result<(), String> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(format!("Expected '{op}'"))
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(c)) if *c == '+' || *c == '-' => *c,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.term()?));
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Token::Op(c)) if *c == '*' || *c == '/' => *c,
                _ => return Ok(left),
            };
            self.at += 1;
            left = Expr::Binary(op, Box::new(left), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat('-') {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        let base = self.primary()?;
        if self.eat('^') {
            return Ok(Expr::Binary('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn list(&mut self, close: char) -> Result<Vec<Expr>, String> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(',')?;
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let token = self.peek().cloned().ok_or("Unexpected end of expression")?;
        self.at += 1;
        match token {
            Token::Number(n) => Ok(Expr::Number(n)),
            Token::Str(s) => Ok(Expr::Str(s)),
            Token::Op('(') => {
                let e = self.expr()?;
                self.expect(')')?;
                Ok(e)
            }
            Token::Op('[') => Ok(Expr::Array(self.list(']')?)),
            Token::Word(w) if self.eat('(') => Ok(Expr::Call(w.to_ascii_uppercase(), self.list(')')?)),
            Token::Word(w) if w == "REPEAT" || w == "LINEAR" => Ok(Expr::Str(w)),
            Token::Word(w) => Ok(Expr::Id(w)),
            Token::Op(c) => Err(format!("Unexpected '{c}'")),
        }
    }
}

impl Expression {
    /// Parses AWS's syntax; the error says what is wrong.
    pub fn parse(src: &str) -> Result<Expression, String> {
        let mut p = Parser { tokens: tokens(src)?, at: 0 };
        let e = p.expr()?;
        if p.at != p.tokens.len() {
            return Err("Unexpected input after the end of the expression".into());
        }
        Ok(Expression(e))
    }

    /// The query ids it refers to (to order evaluation and find unknown ids).
    pub fn ids(&self) -> Vec<String> {
        fn walk(e: &Expr, out: &mut Vec<String>) {
            match e {
                Expr::Id(id) => out.push(id.clone()),
                Expr::Neg(a) => walk(a, out),
                Expr::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Expr::Call(_, args) | Expr::Array(args) => args.iter().for_each(|a| walk(a, out)),
                Expr::Number(_) | Expr::Str(_) => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out
    }

    /// Whether it calls `METRICS()` (which depends on every metric query).
    pub fn uses_all_metrics(&self) -> bool {
        fn walk(e: &Expr) -> bool {
            match e {
                Expr::Call(name, args) => name == "METRICS" || args.iter().any(walk),
                Expr::Array(args) => args.iter().any(walk),
                Expr::Neg(a) => walk(a),
                Expr::Binary(_, a, b) => walk(a) || walk(b),
                _ => false,
            }
        }
        walk(&self.0)
    }

    pub fn evaluate(&self, cx: &Context<'_>) -> Result<Value, String> {
        eval(&self.0, cx)
    }
}

impl Value {
    /// The datapoints to return: a scalar is drawn on every period of the grid.
    pub fn into_series(self, cx: &Context<'_>) -> Result<Series, String> {
        match self {
            Value::Series(s) => Ok(s),
            Value::Scalar(v) => Ok(grid(cx).into_iter().map(|t| (t, v)).collect()),
            Value::Array(_) => Err("The expression returns an array of time series; return a single one".into()),
        }
    }
}

fn grid(cx: &Context<'_>) -> Vec<i64> {
    let step = cx.period_s.max(1) * 1000;
    (0..).map(|k| cx.start_ms + k * step).take_while(|t| *t < cx.end_ms).take(100_800).collect()
}

fn lookup(cx: &Context<'_>, id: &str) -> Result<Value, String> {
    cx.results.iter().find(|(name, _)| name == id).map(|(_, v)| v.clone()).ok_or_else(|| format!("Unrecognized metric id: {id}"))
}

fn binary(op: char, a: f64, b: f64) -> Option<f64> {
    let v = match op {
        '+' => a + b,
        '-' => a - b,
        '*' => a * b,
        '/' if b == 0.0 => return None,
        '/' => a / b,
        _ => a.powf(b),
    };
    v.is_finite().then_some(v)
}

fn map_series(s: &Series, f: impl Fn(f64) -> Option<f64>) -> Series {
    s.iter().filter_map(|(t, v)| f(*v).map(|r| (*t, r))).collect()
}

fn combine(op: char, a: Value, b: Value) -> Result<Value, String> {
    Ok(match (a, b) {
        (Value::Scalar(x), Value::Scalar(y)) => Value::Scalar(binary(op, x, y).unwrap_or(f64::NAN)),
        (Value::Series(s), Value::Scalar(y)) => Value::Series(map_series(&s, |x| binary(op, x, y))),
        (Value::Scalar(x), Value::Series(s)) => Value::Series(map_series(&s, |y| binary(op, x, y))),
        (Value::Series(s), Value::Series(r)) => {
            Value::Series(s.iter().filter_map(|(t, x)| r.get(t).and_then(|y| binary(op, *x, *y)).map(|v| (*t, v))).collect())
        }
        (Value::Array(items), other) => Value::Array(
            items
                .into_iter()
                .map(|(id, s)| Ok((id, series_of(combine(op, Value::Series(s), other.clone())?)?)))
                .collect::<Result<_, String>>()?,
        ),
        (other, Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|(id, s)| Ok((id, series_of(combine(op, other.clone(), Value::Series(s))?)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn series_of(v: Value) -> Result<Series, String> {
    match v {
        Value::Series(s) => Ok(s),
        _ => Err("Expected a time series".into()),
    }
}

fn aggregate(name: &str, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let sum: f64 = values.iter().sum();
    Some(match name {
        "SUM" => sum,
        "AVG" => sum / n,
        "MIN" => values.iter().copied().fold(f64::INFINITY, f64::min),
        "MAX" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => {
            let mean = sum / n;
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt()
        }
    })
}

fn one_arg<'e>(name: &str, args: &'e [Expr]) -> Result<&'e Expr, String> {
    match args {
        [a] => Ok(a),
        _ => Err(format!("{name} takes exactly one argument")),
    }
}

fn per_series(v: Value, f: &dyn Fn(&Series) -> Series) -> Result<Value, String> {
    match v {
        Value::Series(s) => Ok(Value::Series(f(&s))),
        Value::Array(items) => Ok(Value::Array(items.into_iter().map(|(id, s)| (id, f(&s))).collect())),
        Value::Scalar(_) => Err("Expected a time series".into()),
    }
}

fn eval(e: &Expr, cx: &Context<'_>) -> Result<Value, String> {
    match e {
        Expr::Number(n) => Ok(Value::Scalar(*n)),
        Expr::Str(s) => Err(format!("Unexpected string: {s}")),
        Expr::Id(id) => lookup(cx, id),
        Expr::Neg(a) => combine('*', Value::Scalar(-1.0), eval(a, cx)?),
        Expr::Binary(op, a, b) => combine(*op, eval(a, cx)?, eval(b, cx)?),
        Expr::Array(items) => {
            let mut out = Vec::new();
            for (n, item) in items.iter().enumerate() {
                let id = match item {
                    Expr::Id(id) => id.clone(),
                    _ => format!("item{}", n + 1),
                };
                match eval(item, cx)? {
                    Value::Series(s) => out.push((id, s)),
                    Value::Array(more) => out.extend(more),
                    Value::Scalar(_) => return Err("An array holds time series only".into()),
                }
            }
            Ok(Value::Array(out))
        }
        Expr::Call(name, args) => call(name, args, cx),
    }
}

fn call(name: &str, args: &[Expr], cx: &Context<'_>) -> Result<Value, String> {
    match name {
        "METRICS" => {
            let filter = match args {
                [] => None,
                [Expr::Str(s)] => Some(s.as_str()),
                _ => return Err("METRICS takes no argument or one string".into()),
            };
            let mut out = Vec::new();
            for id in cx.metric_ids {
                let label = cx.labels.get(id).map(String::as_str).unwrap_or("");
                if filter.is_some_and(|f| !id.contains(f) && !label.contains(f)) {
                    continue;
                }
                if let Value::Series(s) = lookup(cx, id)? {
                    out.push((id.clone(), s));
                }
            }
            Ok(Value::Array(out))
        }
        "SUM" | "AVG" | "MIN" | "MAX" | "STDDEV" => match eval(one_arg(name, args)?, cx)? {
            Value::Scalar(v) => Ok(Value::Scalar(v)),
            Value::Series(s) => {
                let values: Vec<f64> = s.values().copied().collect();
                Ok(Value::Scalar(aggregate(name, &values).unwrap_or(f64::NAN)))
            }
            Value::Array(items) => {
                let mut by_time: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for (_, s) in &items {
                    for (t, v) in s {
                        by_time.entry(*t).or_default().push(*v);
                    }
                }
                Ok(Value::Series(by_time.into_iter().filter_map(|(t, vs)| aggregate(name, &vs).map(|v| (t, v))).collect()))
            }
        },
        "ABS" | "CEIL" | "FLOOR" | "LOG" | "LOG10" => {
            let f = |x: f64| -> Option<f64> {
                let v = match name {
                    "ABS" => x.abs(),
                    "CEIL" => x.ceil(),
                    "FLOOR" => x.floor(),
                    "LOG" => x.ln(),
                    _ => x.log10(),
                };
                v.is_finite().then_some(v)
            };
            match eval(one_arg(name, args)?, cx)? {
                Value::Scalar(x) => Ok(Value::Scalar(f(x).unwrap_or(f64::NAN))),
                v => per_series(v, &|s| map_series(s, f)),
            }
        }
        "RATE" | "DIFF" => {
            let rate = name == "RATE";
            per_series(eval(one_arg(name, args)?, cx)?, &|s| {
                s.iter()
                    .zip(s.iter().skip(1))
                    .filter_map(|((t0, v0), (t1, v1))| {
                        let d = v1 - v0;
                        let v = if rate { d / ((t1 - t0) as f64 / 1000.0) } else { d };
                        v.is_finite().then_some((*t1, v))
                    })
                    .collect()
            })
        }
        "RUNNING_SUM" => per_series(eval(one_arg(name, args)?, cx)?, &|s| {
            let mut total = 0.0;
            s.iter()
                .map(|(t, v)| {
                    total += v;
                    (*t, total)
                })
                .collect()
        }),
        "FILL" => {
            let [series, with] = args else { return Err("FILL takes two arguments".into()) };
            let points = grid(cx);
            let fill = |s: &Series, with: &Expr| -> Result<Series, String> {
                let mut out = Series::new();
                for t in &points {
                    let v = match (s.get(t), with) {
                        (Some(v), _) => *v,
                        (None, Expr::Str(mode)) if mode == "REPEAT" => match s.range(..*t).next_back() {
                            Some((_, v)) => *v,
                            None => match s.range(*t..).next() {
                                Some((_, v)) => *v,
                                None => continue,
                            },
                        },
                        (None, Expr::Str(mode)) if mode == "LINEAR" => match (s.range(..*t).next_back(), s.range(*t..).next()) {
                            (Some((t0, v0)), Some((t1, v1))) => v0 + (v1 - v0) * ((t - t0) as f64 / (t1 - t0) as f64),
                            (Some((_, v)), None) | (None, Some((_, v))) => *v,
                            (None, None) => continue,
                        },
                        (None, other) => match eval(other, cx)? {
                            Value::Scalar(v) => v,
                            _ => return Err("FILL's value must be a number, REPEAT or LINEAR".into()),
                        },
                    };
                    out.insert(*t, v);
                }
                Ok(out)
            };
            match eval(series, cx)? {
                Value::Series(s) => Ok(Value::Series(fill(&s, with)?)),
                Value::Array(items) => {
                    Ok(Value::Array(items.into_iter().map(|(id, s)| Ok((id, fill(&s, with)?))).collect::<Result<_, String>>()?))
                }
                Value::Scalar(_) => Err("FILL takes a time series".into()),
            }
        }
        "PERIOD" => {
            one_arg(name, args)?;
            Ok(Value::Scalar(cx.period_s as f64))
        }
        "TIME_SERIES" => match eval(one_arg(name, args)?, cx)? {
            Value::Scalar(v) => Ok(Value::Series(grid(cx).into_iter().map(|t| (t, v)).collect())),
            _ => Err("TIME_SERIES takes a number".into()),
        },
        other => Err(format!("Unknown function: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    fn run(expr: &str) -> Result<Value, String> {
        let results = vec![
            ("m1".to_string(), Value::Series(s(&[(0, 1.0), (60_000, 2.0), (120_000, 4.0)]))),
            ("m2".to_string(), Value::Series(s(&[(0, 10.0), (120_000, 0.0)]))),
            ("errors".to_string(), Value::Series(s(&[(60_000, 5.0)]))),
        ];
        let ids = vec!["m1".to_string(), "m2".to_string(), "errors".to_string()];
        let labels: BTreeMap<String, String> = [("m2".to_string(), "Throttles".to_string())].into();
        let cx = Context { results: &results, metric_ids: &ids, labels: &labels, start_ms: 0, end_ms: 180_000, period_s: 60 };
        Expression::parse(expr)?.evaluate(&cx)
    }

    fn series(expr: &str) -> Vec<(i64, f64)> {
        match run(expr) {
            Ok(Value::Series(s)) => s.into_iter().collect(),
            other => panic!("{expr}: {other:?}"),
        }
    }

    #[test]
    fn series_results() {
        let cases: Vec<(&str, Vec<(i64, f64)>)> = vec![
            ("m1", vec![(0, 1.0), (60_000, 2.0), (120_000, 4.0)]),
            ("m1 * 100", vec![(0, 100.0), (60_000, 200.0), (120_000, 400.0)]),
            // Series meet on timestamps; a division by zero has no datapoint.
            ("m1 + m2", vec![(0, 11.0), (120_000, 4.0)]),
            ("m1 / m2", vec![(0, 0.1)]),
            ("100 * errors / m1", vec![(60_000, 250.0)]),
            ("-m1 + 2 ^ 2", vec![(0, 3.0), (60_000, 2.0), (120_000, 0.0)]),
            ("(m1 + 1) * 2", vec![(0, 4.0), (60_000, 6.0), (120_000, 10.0)]),
            ("SUM(METRICS())", vec![(0, 11.0), (60_000, 7.0), (120_000, 4.0)]),
            ("MAX([m1, m2])", vec![(0, 10.0), (60_000, 2.0), (120_000, 4.0)]),
            ("AVG([m1, m2])", vec![(0, 5.5), (60_000, 2.0), (120_000, 2.0)]),
            ("SUM(METRICS(\"Thrott\"))", vec![(0, 10.0), (120_000, 0.0)]),
            ("DIFF(m1)", vec![(60_000, 1.0), (120_000, 2.0)]),
            ("RATE(m1)", vec![(60_000, 1.0 / 60.0), (120_000, 2.0 / 60.0)]),
            ("RUNNING_SUM(m1)", vec![(0, 1.0), (60_000, 3.0), (120_000, 7.0)]),
            ("FILL(m2, 0)", vec![(0, 10.0), (60_000, 0.0), (120_000, 0.0)]),
            ("FILL(m2, REPEAT)", vec![(0, 10.0), (60_000, 10.0), (120_000, 0.0)]),
            ("FILL(m2, LINEAR)", vec![(0, 10.0), (60_000, 5.0), (120_000, 0.0)]),
            ("FILL(errors, 1) + m1", vec![(0, 2.0), (60_000, 7.0), (120_000, 5.0)]),
            ("ABS(m1 - 3)", vec![(0, 2.0), (60_000, 1.0), (120_000, 1.0)]),
            ("TIME_SERIES(7)", vec![(0, 7.0), (60_000, 7.0), (120_000, 7.0)]),
            ("m1 / PERIOD(m1)", vec![(0, 1.0 / 60.0), (60_000, 2.0 / 60.0), (120_000, 4.0 / 60.0)]),
            ("m1 - AVG(m1)", vec![(0, -4.0 / 3.0), (60_000, -1.0 / 3.0), (120_000, 5.0 / 3.0)]),
        ];
        for (expr, want) in cases {
            let got = series(expr);
            assert_eq!(got.len(), want.len(), "{expr}: {got:?}");
            for ((t, v), (wt, wv)) in got.iter().zip(&want) {
                assert!(t == wt && (v - wv).abs() < 1e-9, "{expr}: {got:?} != {want:?}");
            }
        }
    }

    #[test]
    fn scalars_and_arrays() {
        assert_eq!(run("SUM(m1)").unwrap(), Value::Scalar(7.0));
        assert_eq!(run("MAX(m1) * 2").unwrap(), Value::Scalar(8.0));
        match run("METRICS()").unwrap() {
            Value::Array(items) => assert_eq!(items.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["m1", "m2", "errors"]),
            other => panic!("{other:?}"),
        }
        match run("METRICS() * 2").unwrap() {
            Value::Array(items) => assert_eq!(items[0].1, s(&[(0, 2.0), (60_000, 4.0), (120_000, 8.0)])),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_expressions() {
        let cases = [
            ("m1 +", "Unexpected end"),
            ("m1 m2", "Unexpected input"),
            ("m3 * 2", "Unrecognized metric id: m3"),
            ("NOPE(m1)", "Unknown function: NOPE"),
            ("FILL(m1)", "FILL takes two arguments"),
            ("(m1", "Expected ')'"),
            ("m1 % 2", "Unrecognized character: %"),
            ("SUM(m1, m2)", "exactly one argument"),
        ];
        for (expr, part) in cases {
            let err = run(expr).unwrap_err();
            assert!(err.contains(part), "{expr}: {err}");
        }
    }

    #[test]
    fn ids_referenced() {
        let e = Expression::parse("SUM([m1, e2]) / FILL(m3, 0)").unwrap();
        assert_eq!(e.ids(), ["m1", "e2", "m3"]);
        assert!(!e.uses_all_metrics());
        assert!(Expression::parse("AVG(METRICS())").unwrap().uses_all_metrics());
    }
}
