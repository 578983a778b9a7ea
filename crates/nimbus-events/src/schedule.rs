//! Schedule expressions in AWS's dialect: `rate(N unit)` and the six-field
//! `cron(minutes hours day-of-month month day-of-week year)` in UTC, with `?`, `L`, `W`, `#`,
//! ranges, lists and increments. Parsing validates exactly what AWS accepts; the times a
//! schedule fires are computed here, to the minute, without IO.
//!
//! Crates checked first: `cron` 0.17 has no `L`/`W`/`#`; `croner` 4 has them but parses a
//! superset (seconds, `+`, nicknames, `5#L`, `?` anywhere, 0-based weekdays), so holding it to
//! AWS's dialect would have meant parsing every field here anyway.

use chrono::{DateTime, Datelike, NaiveDate, Timelike};

const MINUTE_MS: i64 = 60_000;
/// The years AWS's cron accepts.
pub const FIRST_YEAR: i32 = 1970;
pub const LAST_YEAR: i32 = 2199;

/// An expression AWS would refuse. The message is AWS's; `reason` says what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid.")]
pub struct InvalidSchedule {
    pub reason: String,
}

fn invalid<T>(reason: impl Into<String>) -> Result<T, InvalidSchedule> {
    Err(InvalidSchedule { reason: reason.into() })
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every so many milliseconds, counted from when the rule was enabled.
    Rate {
        every_ms: i64,
    },
    Cron(Box<Cron>),
}

impl Schedule {
    /// AWS takes the expression as written: no surrounding spaces, one space between a
    /// rate's value and unit.
    pub fn parse(expr: &str) -> Result<Schedule, InvalidSchedule> {
        if let Some(body) = expr.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(body).map(|every_ms| Schedule::Rate { every_ms });
        }
        if let Some(body) = expr.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return Cron::parse(body).map(|c| Schedule::Cron(Box::new(c)));
        }
        invalid("neither rate(...) nor cron(...)")
    }

    /// When a schedule enabled at `now_ms` fires first: a rate one period later, a cron
    /// expression at its next matching minute.
    pub fn first_fire(&self, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { every_ms } => now_ms.checked_add(*every_ms),
            Schedule::Cron(c) => c.next_after(now_ms),
        }
    }

    /// The latest time of the series whose next fire is `next_ms` (≤ `now_ms`) that is not
    /// after `now_ms`: the fire that is due now, with any older missed ones skipped.
    pub fn latest_due(&self, next_ms: i64, now_ms: i64) -> i64 {
        if now_ms <= next_ms {
            return next_ms;
        }
        match self {
            Schedule::Rate { every_ms } => next_ms + (now_ms - next_ms) / every_ms * every_ms,
            Schedule::Cron(c) => c.latest_at_or_before(now_ms).filter(|t| *t >= next_ms).unwrap_or(next_ms),
        }
    }

    /// The first fire strictly after `now_ms` of the series that fired at `fired_ms`.
    pub fn next_after(&self, fired_ms: i64, now_ms: i64) -> Option<i64> {
        match self {
            Schedule::Rate { every_ms } => {
                let periods = if now_ms < fired_ms { 1 } else { (now_ms - fired_ms) / every_ms + 1 };
                fired_ms.checked_add(periods.checked_mul(*every_ms)?)
            }
            Schedule::Cron(c) => c.next_after(now_ms.max(fired_ms)),
        }
    }
}

/// `N minute(s)|hour(s)|day(s)`: 1 takes the singular, more the plural.
fn parse_rate(body: &str) -> Result<i64, InvalidSchedule> {
    let parts: Vec<&str> = body.split(' ').collect();
    let [value, unit] = parts.as_slice() else { return invalid("rate wants a value and a unit, one space apart") };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return invalid("rate value is not a positive whole number");
    }
    let n: i64 = match value.parse() {
        Ok(n) if n > 0 => n,
        _ => return invalid("rate value is not a positive whole number"),
    };
    let unit_ms: i64 = match (n == 1, *unit) {
        (true, "minute") | (false, "minutes") => MINUTE_MS,
        (true, "hour") | (false, "hours") => 60 * MINUTE_MS,
        (true, "day") | (false, "days") => 24 * 60 * MINUTE_MS,
        _ => return invalid("rate unit must be minute(s), hour(s) or day(s), singular for 1 and plural otherwise"),
    };
    match n.checked_mul(unit_ms) {
        Some(ms) if ms <= 1000 * 365 * 24 * 60 * MINUTE_MS => Ok(ms),
        _ => invalid("rate is too long"),
    }
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    /// Bit m for month m (1–12).
    months: u16,
    /// Bit y-1970.
    years: [u64; 4],
    days: Days,
}

/// Which days fire: AWS's cron names them by day of month or by day of week, never both.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    /// Bits 1–31.
    MonthSet(u32),
    /// `L`: the month's last day.
    LastOfMonth,
    /// `LW`: the month's last weekday (Monday–Friday).
    LastWeekdayOfMonth,
    /// `nW`: the weekday nearest to day n, within the month.
    NearestWeekday(u32),
    /// Bits 1–7 (1 = Sunday).
    WeekSet(u8),
    /// `dL`: the month's last day-of-week d.
    LastWeekdayNamed(u32),
    /// `d#n`: the month's n-th day-of-week d.
    Nth { weekday: u32, n: u32 },
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses the six fields inside `cron(...)`.
    pub fn parse(body: &str) -> Result<Cron, InvalidSchedule> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        let [minute, hour, dom, month, dow, year] = fields.as_slice() else {
            return invalid(format!("cron wants 6 fields, got {}", fields.len()));
        };
        let minutes = values(minute, 0, 59, None)?.into_iter().fold(0u64, |acc, v| acc | 1 << v);
        let hours = values(hour, 0, 23, None)?.into_iter().fold(0u32, |acc, v| acc | 1 << v);
        let months = values(month, 1, 12, Some(&MONTHS))?.into_iter().fold(0u16, |acc, v| acc | 1 << v);
        let mut years = [0u64; 4];
        for y in values(year, FIRST_YEAR as u32, LAST_YEAR as u32, None)? {
            let i = (y - FIRST_YEAR as u32) as usize;
            years[i / 64] |= 1 << (i % 64);
        }
        let days = match (*dom, *dow) {
            ("?", "?") => return invalid("day-of-month and day-of-week cannot both be ?"),
            (dom, "?") => day_of_month(dom)?,
            ("?", dow) => day_of_week(dow)?,
            _ => return invalid("one of day-of-month and day-of-week must be ?"),
        };
        Ok(Cron { minutes, hours, months, years, days })
    }

    fn year_ok(&self, y: i32) -> bool {
        if !(FIRST_YEAR..=LAST_YEAR).contains(&y) {
            return false;
        }
        let i = (y - FIRST_YEAR) as usize;
        self.years[i / 64] & (1 << (i % 64)) != 0
    }

    fn month_ok(&self, m: u32) -> bool {
        self.months & (1 << m) != 0
    }

    fn day_ok(&self, date: NaiveDate) -> bool {
        let d = date.day();
        let last = days_in_month(date.year(), date.month());
        let dow = date.weekday().num_days_from_sunday() + 1;
        match self.days {
            Days::MonthSet(bits) => bits & (1 << d) != 0,
            Days::LastOfMonth => d == last,
            Days::LastWeekdayOfMonth => d == weekday_on_or_before(date.with_day(last), last),
            Days::NearestWeekday(n) => n <= last && d == nearest_weekday(date.with_day(n), n, last),
            Days::WeekSet(bits) => bits & (1 << dow) != 0,
            Days::LastWeekdayNamed(w) => dow == w && d + 7 > last,
            Days::Nth { weekday, n } => dow == weekday && (d - 1) / 7 + 1 == n,
        }
    }

    fn first_time_from(&self, h0: u32, m0: u32) -> Option<(u32, u32)> {
        (h0..24).filter(|h| self.hours & (1 << h) != 0).find_map(|h| {
            let from = if h == h0 { m0 } else { 0 };
            (from..60).find(|m| self.minutes & (1 << m) != 0).map(|m| (h, m))
        })
    }

    fn last_time_upto(&self, h0: u32, m0: u32) -> Option<(u32, u32)> {
        (0..=h0).rev().filter(|h| self.hours & (1 << h) != 0).find_map(|h| {
            let to = if h == h0 { m0 } else { 59 };
            (0..=to).rev().find(|m| self.minutes & (1 << m) != 0).map(|m| (h, m))
        })
    }

    /// The first matching minute strictly after `t_ms`, if the expression fires again.
    pub fn next_after(&self, t_ms: i64) -> Option<i64> {
        let start_ms = t_ms.div_euclid(MINUTE_MS).checked_add(1)? * MINUTE_MS;
        let start = DateTime::from_timestamp_millis(start_ms)?.naive_utc();
        let mut date = start.date();
        let mut first = true;
        if date.year() < FIRST_YEAR {
            date = NaiveDate::from_ymd_opt(FIRST_YEAR, 1, 1)?;
            first = false;
        }
        loop {
            let y = date.year();
            if y > LAST_YEAR {
                return None;
            }
            if !self.year_ok(y) {
                date = NaiveDate::from_ymd_opt(y + 1, 1, 1)?;
            } else if !self.month_ok(date.month()) {
                date = first_of_next_month(date)?;
            } else {
                if self.day_ok(date) {
                    let (h0, m0) = if first { (start.hour(), start.minute()) } else { (0, 0) };
                    if let Some((h, m)) = self.first_time_from(h0, m0) {
                        return Some(date.and_hms_opt(h, m, 0)?.and_utc().timestamp_millis());
                    }
                }
                date = date.succ_opt()?;
            }
            first = false;
        }
    }

    /// The latest matching minute at or before `t_ms`, if the expression ever fired.
    pub fn latest_at_or_before(&self, t_ms: i64) -> Option<i64> {
        let start_ms = t_ms.div_euclid(MINUTE_MS) * MINUTE_MS;
        let start = DateTime::from_timestamp_millis(start_ms)?.naive_utc();
        let mut date = start.date();
        let mut first = true;
        if date.year() > LAST_YEAR {
            date = NaiveDate::from_ymd_opt(LAST_YEAR, 12, 31)?;
            first = false;
        }
        loop {
            let y = date.year();
            if y < FIRST_YEAR {
                return None;
            }
            if !self.year_ok(y) {
                date = NaiveDate::from_ymd_opt(y - 1, 12, 31)?;
            } else if !self.month_ok(date.month()) {
                date = date.with_day(1)?.pred_opt()?;
            } else {
                if self.day_ok(date) {
                    let (h0, m0) = if first { (start.hour(), start.minute()) } else { (23, 59) };
                    if let Some((h, m)) = self.last_time_upto(h0, m0) {
                        return Some(date.and_hms_opt(h, m, 0)?.and_utc().timestamp_millis());
                    }
                }
                date = date.pred_opt()?;
            }
            first = false;
        }
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    NaiveDate::from_ymd_opt(year, month, 1).and_then(first_of_next_month).and_then(|d| d.pred_opt()).map(|d| d.day()).unwrap_or(28)
}

/// Day-of-week (1 = Sunday) of `date`, or of nothing when the day does not exist.
fn dow_of(date: Option<NaiveDate>) -> Option<u32> {
    date.map(|d| d.weekday().num_days_from_sunday() + 1)
}

/// The last Monday–Friday on or before day `day` (the month's last day).
fn weekday_on_or_before(date: Option<NaiveDate>, day: u32) -> u32 {
    match dow_of(date) {
        Some(7) => day - 1,
        Some(1) => day - 2,
        _ => day,
    }
}

/// AWS's (Quartz's) `nW`: the weekday nearest to day n without leaving the month.
fn nearest_weekday(date: Option<NaiveDate>, n: u32, last: u32) -> u32 {
    match dow_of(date) {
        Some(7) if n == 1 => 3,
        Some(7) => n - 1,
        Some(1) if n == last => n - 2,
        Some(1) => n + 1,
        _ => n,
    }
}

fn day_of_month(field: &str) -> Result<Days, InvalidSchedule> {
    match field {
        "L" => return Ok(Days::LastOfMonth),
        "LW" => return Ok(Days::LastWeekdayOfMonth),
        _ => {}
    }
    if let Some(n) = field.strip_suffix('W') {
        let n = number(n, 1, 31)?;
        return Ok(Days::NearestWeekday(n));
    }
    Ok(Days::MonthSet(values(field, 1, 31, None)?.into_iter().fold(0u32, |acc, v| acc | 1 << v)))
}

fn day_of_week(field: &str) -> Result<Days, InvalidSchedule> {
    if field == "L" {
        return Ok(Days::WeekSet(1 << 7));
    }
    if let Some(d) = field.strip_suffix('L') {
        return Ok(Days::LastWeekdayNamed(value(d, 1, 7, Some(&WEEKDAYS))?));
    }
    if let Some((d, n)) = field.split_once('#') {
        return Ok(Days::Nth { weekday: value(d, 1, 7, Some(&WEEKDAYS))?, n: number(n, 1, 5)? });
    }
    Ok(Days::WeekSet(values(field, 1, 7, Some(&WEEKDAYS))?.into_iter().fold(0u8, |acc, v| acc | 1 << v)))
}

fn number(s: &str, min: u32, max: u32) -> Result<u32, InvalidSchedule> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!("{s:?} is not a number"));
    }
    match s.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => invalid(format!("{s} is outside {min}-{max}")),
    }
}

/// A number or (for months and days of week) a three-letter name.
fn value(s: &str, min: u32, max: u32, names: Option<&[&str]>) -> Result<u32, InvalidSchedule> {
    if let Some(names) = names {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
    }
    number(s, min, max)
}

/// The values a comma-separated field selects: `*`, `a`, `a-b` (wrapping past the end when
/// a > b), each optionally `/step`.
fn values(field: &str, min: u32, max: u32, names: Option<&[&str]>) -> Result<Vec<u32>, InvalidSchedule> {
    if field.is_empty() {
        return invalid("empty field");
    }
    let span = max - min + 1;
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(number(s, 1, span - 1)?)),
            None => (item, None),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let a = value(range, min, max, names)?;
            (a, if step.is_some() { max } else { a })
        };
        // Walk from start to end, wrapping past max back to min.
        let len = if end >= start { end - start + 1 } else { span - (start - end) + 1 };
        let step = step.unwrap_or(1);
        let mut i = 0;
        while i < len {
            out.push(min + (start - min + i) % span);
            i += step;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time").and_utc().timestamp_millis()
    }

    fn show(t: i64) -> String {
        DateTime::from_timestamp_millis(t).expect("time").format("%Y-%m-%d %H:%M %a").to_string()
    }

    /// The next `n` fire times of `expr` after `from`.
    fn check(expr: &str, from: &str, expected: &[&str]) {
        let s = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {}", e.reason));
        let Schedule::Cron(c) = &s else { panic!("{expr} is not cron") };
        let mut t = ms(from);
        let mut got = Vec::new();
        for _ in expected {
            match c.next_after(t) {
                Some(n) => {
                    got.push(show(n));
                    // Walking backwards from a fire time finds it again.
                    assert_eq!(c.latest_at_or_before(n), Some(n), "{expr}: latest_at_or_before({})", show(n));
                    assert_eq!(c.latest_at_or_before(n + 59_999), Some(n), "{expr}");
                    t = n;
                }
                None => {
                    got.push("never".into());
                    break;
                }
            }
        }
        assert_eq!(got, expected, "{expr} from {from}");
    }

    #[test]
    fn aws_examples() {
        // 10:15 AM UTC every day.
        check("cron(15 10 * * ? *)", "2024-03-01 12:00", &["2024-03-02 10:15 Sat", "2024-03-03 10:15 Sun"]);
        // Noon every day.
        check("cron(0 12 * * ? *)", "2024-03-01 12:00", &["2024-03-02 12:00 Sat", "2024-03-03 12:00 Sun"]);
        check("cron(0 12 * * ? *)", "2024-03-01 11:59", &["2024-03-01 12:00 Fri"]);
        // 6:00 PM Monday through Friday.
        check("cron(0 18 ? * MON-FRI *)", "2024-03-01 18:00", &["2024-03-04 18:00 Mon", "2024-03-05 18:00 Tue"]);
        // 8:00 AM on the first day of the month.
        check("cron(0 8 1 * ? *)", "2024-01-15 00:00", &["2024-02-01 08:00 Thu", "2024-03-01 08:00 Fri", "2024-04-01 08:00 Mon"]);
        // Every 15 minutes.
        check(
            "cron(0/15 * * * ? *)",
            "2024-03-01 10:07",
            &["2024-03-01 10:15 Fri", "2024-03-01 10:30 Fri", "2024-03-01 10:45 Fri", "2024-03-01 11:00 Fri"],
        );
        // Every 10 minutes Monday through Friday.
        check("cron(0/10 * ? * MON-FRI *)", "2024-03-01 23:55", &["2024-03-04 00:00 Mon", "2024-03-04 00:10 Mon"]);
        // Every 5 minutes between 8:00 AM and 5:55 PM weekdays.
        check("cron(0/5 8-17 ? * MON-FRI *)", "2024-03-04 17:54", &["2024-03-04 17:55 Mon", "2024-03-05 08:00 Tue"]);
        // 9 AM on the first Monday of each month.
        check("cron(0 9 ? * 2#1 *)", "2024-01-01 09:00", &["2024-02-05 09:00 Mon", "2024-03-04 09:00 Mon", "2024-04-01 09:00 Mon"]);
        // 10:15 AM on the last Friday of each month during 2002 to 2005.
        check(
            "cron(15 10 ? * 6L 2002-2005)",
            "2002-01-01 00:00",
            &["2002-01-25 10:15 Fri", "2002-02-22 10:15 Fri", "2002-03-29 10:15 Fri"],
        );
        check("cron(15 10 ? * 6L 2002-2005)", "2005-12-01 00:00", &["2005-12-30 10:15 Fri", "never"]);
        check("cron(15 10 ? * 6L 2002-2005)", "2024-01-01 00:00", &["never"]);
    }

    #[test]
    fn day_fields() {
        check("cron(0 0 L * ? *)", "2024-01-31 00:00", &["2024-02-29 00:00 Thu", "2024-03-31 00:00 Sun", "2024-04-30 00:00 Tue"]);
        // Last weekday: 2024-03-31 is a Sunday, 2024-08-31 a Saturday.
        check("cron(0 0 LW 3,8 ? 2024)", "2024-01-01 00:00", &["2024-03-29 00:00 Fri", "2024-08-30 00:00 Fri", "never"]);
        // 2024-06-01 is a Saturday: 1W moves forward to Monday the 3rd; 15W (Saturday) to Friday 14th.
        check("cron(0 0 1W 6 ? 2024)", "2024-01-01 00:00", &["2024-06-03 00:00 Mon"]);
        check("cron(0 0 15W 6 ? 2024)", "2024-01-01 00:00", &["2024-06-14 00:00 Fri"]);
        // 2024-06-30 is a Sunday and the month's last day: back to Friday the 28th.
        check("cron(0 0 30W 6 ? 2024)", "2024-01-01 00:00", &["2024-06-28 00:00 Fri"]);
        // 31st only in months that have one.
        check("cron(0 0 31 * ? 2024)", "2024-03-31 00:00", &["2024-05-31 00:00 Fri", "2024-07-31 00:00 Wed"]);
        // L alone in day-of-week is Saturday.
        check("cron(0 0 ? * L *)", "2024-03-01 00:00", &["2024-03-02 00:00 Sat", "2024-03-09 00:00 Sat"]);
        // Names, lists, ranges, wrap-around ranges.
        check("cron(30 6 ? * SUN,wed *)", "2024-03-01 00:00", &["2024-03-03 06:30 Sun", "2024-03-06 06:30 Wed"]);
        check(
            "cron(0 0 ? * FRI-MON *)",
            "2024-03-01 00:00",
            &["2024-03-02 00:00 Sat", "2024-03-03 00:00 Sun", "2024-03-04 00:00 Mon", "2024-03-08 00:00 Fri"],
        );
        check(
            "cron(0 22-1 * * ? 2024)",
            "2024-03-01 00:00",
            &["2024-03-01 01:00 Fri", "2024-03-01 22:00 Fri", "2024-03-01 23:00 Fri", "2024-03-02 00:00 Sat"],
        );
        check("cron(0 0 1 JAN-MAR/2 ? *)", "2024-01-01 00:00", &["2024-03-01 00:00 Fri", "2025-01-01 00:00 Wed"]);
        check(
            "cron(5,10-12,*/20 0 1 1 ? 2030)",
            "2024-01-01 00:00",
            &[
                "2030-01-01 00:00 Tue",
                "2030-01-01 00:05 Tue",
                "2030-01-01 00:10 Tue",
                "2030-01-01 00:11 Tue",
                "2030-01-01 00:12 Tue",
                "2030-01-01 00:20 Tue",
                "2030-01-01 00:40 Tue",
                "never",
            ],
        );
        // Every minute.
        check("cron(* * * * ? *)", "2024-03-01 23:59", &["2024-03-02 00:00 Sat", "2024-03-02 00:01 Sat"]);
        // Feb 30th never comes.
        check("cron(0 0 30 2 ? *)", "2024-01-01 00:00", &["never"]);
    }

    #[test]
    fn next_after_is_strict_and_minute_aligned() {
        let Schedule::Cron(c) = Schedule::parse("cron(* * * * ? *)").expect("valid") else { panic!() };
        let t = ms("2024-03-01 10:00");
        assert_eq!(c.next_after(t), Some(t + 60_000));
        assert_eq!(c.next_after(t + 59_999), Some(t + 60_000));
        assert_eq!(c.latest_at_or_before(t + 59_999), Some(t));
    }

    #[test]
    fn invalid_expressions() {
        for expr in [
            "",
            "cron()",
            "cron(0 12 * * * *)",
            "cron(0 12 ? * ? *)",
            "cron(7 20 * * 1-7 *)",
            "cron(0 12 * * ?)",
            "cron(0 12 * * ? * *)",
            "cron(60 * * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 0 0 * ? *)",
            "cron(0 0 32 * ? *)",
            "cron(0 0 * 13 ? *)",
            "cron(0 0 ? * 8 *)",
            "cron(0 0 ? * 0 *)",
            "cron(0 0 * * ? 1969)",
            "cron(0 0 * * ? 2200)",
            "cron(*/60 * * * ? *)",
            "cron(0/0 * * * ? *)",
            "cron(a * * * ? *)",
            "cron(0 0 32W * ? *)",
            "cron(0 0 ? * 2#6 *)",
            "cron(0 0 ? * 8L *)",
            "cron(0 0 L-2 * ? *)",
            "cron(1- * * * ? *)",
            "cron(, * * * ? *)",
            "cron(0 0 ? * FOO *)",
            "rate(1 minutes)",
            "rate( 10 minutes )",
            " rate(10 minutes)",
            "rate(10  minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(1.5 hours)",
            "rate(1 hour",
            "rate(1 week)",
            "rate(minutes)",
            "rate(2 Minutes)",
            "rate(+2 minutes)",
            "rate(1 minute 2)",
            "every 5 minutes",
            "rate(99999999999 days)",
        ] {
            let e = Schedule::parse(expr).expect_err(expr);
            assert_eq!(e.to_string(), "Parameter ScheduleExpression is not valid.");
        }
    }

    #[test]
    fn rates() {
        for (expr, ms) in [
            ("rate(1 minute)", 60_000),
            ("rate(5 minutes)", 300_000),
            ("rate(1 hour)", 3_600_000),
            ("rate(2 hours)", 7_200_000),
            ("rate(1 day)", 86_400_000),
            ("rate(2 days)", 172_800_000),
        ] {
            assert_eq!(Schedule::parse(expr), Ok(Schedule::Rate { every_ms: ms }), "{expr}");
        }
        let s = Schedule::parse("rate(5 minutes)").expect("valid");
        let t0 = ms("2024-03-01 10:00") + 12_345;
        assert_eq!(s.first_fire(t0), Some(t0 + 300_000));
        // Due at t0+5m; found 12 minutes later: the latest missed period is t0+10m.
        let next = t0 + 300_000;
        let now = t0 + 720_000;
        assert_eq!(s.latest_due(next, now), t0 + 600_000);
        assert_eq!(s.next_after(t0 + 600_000, now), Some(t0 + 900_000));
        // On time: the next is one period on.
        assert_eq!(s.latest_due(next, next), next);
        assert_eq!(s.next_after(next, next), Some(next + 300_000));
    }

    #[test]
    fn cron_missed_fires_collapse_to_the_latest() {
        let s = Schedule::parse("cron(0 12 * * ? *)").expect("valid");
        let next = ms("2024-03-01 12:00");
        let now = ms("2024-03-04 13:30");
        assert_eq!(s.latest_due(next, now), ms("2024-03-04 12:00"));
        assert_eq!(s.next_after(ms("2024-03-04 12:00"), now), Some(ms("2024-03-05 12:00")));
        assert_eq!(s.first_fire(ms("2024-03-04 12:00")), Some(ms("2024-03-05 12:00")));
    }
}
