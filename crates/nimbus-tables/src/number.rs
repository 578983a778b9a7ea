//! DynamoDB's number type, exact: up to 38 significant decimal digits with a decimal exponent
//! that keeps the magnitude within 1E-130 ..= 9.9999999999999999999999999999999999999E+125.
//!
//! Why not a crate: `rust_decimal` holds 28 digits (DynamoDB needs 38) and 28 decimal places
//! (DynamoDB needs 130); `bigdecimal` is unbounded and would bring `num-bigint` for what is a
//! 38-digit coefficient and a small exponent. 10^38 fits in a `u128`, so a number is a sign, a
//! `u128` coefficient without trailing zeros and an exponent; that form is canonical, so derived
//! equality and hashing are numeric. Sums and differences are computed exactly on decimal
//! digits and refused as DynamoDB refuses them when they need more than 38 digits.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most significant digits a number may have.
pub const MAX_DIGITS: u32 = 38;
/// Largest decimal exponent of a number's leading digit (9.99…E+125).
pub const MAX_EXPONENT: i64 = 125;
/// Smallest decimal exponent of a number's leading digit (1E-130).
pub const MIN_EXPONENT: i64 = -130;

/// Why a number was refused, in DynamoDB's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// An empty `N`. Text: dynalite `validations/index.js` `checkNum` (validated against AWS by
    /// its author).
    #[error("The parameter cannot be converted to a numeric value")]
    Empty,
    /// Not a decimal literal (`NaN`, `Infinity`, `1 `, `dog`); the text carries the input.
    /// Text: dynalite `checkNum`; ScyllaDB's AWS-run `test/alternator/test_number.py`
    /// (`test_invalid_numbers`) matches `ValidationException.*numeric`.
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    NotNumeric(String),
    /// Larger than 9.99…E+125 in magnitude, or a sum that needs more than 38 digits (AWS uses
    /// this text for both: ScyllaDB `test_number.py`, `test_update_expression_plus_imprecise`).
    /// Text: dynalite `checkNum`, dynoxide `src/types.rs`.
    #[error("Number overflow. Attempting to store a number with magnitude larger than supported range")]
    Overflow,
    /// Smaller than 1E-130 in magnitude (and not zero). Text: dynalite `checkNum`.
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    Underflow,
    /// More than 38 significant digits. Text: dynalite `checkNum`; quoted from AWS in
    /// warpstreamlabs/bento PR #909.
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
}

/// An exact DynamoDB number.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// Without trailing zeros; 0 only for zero.
    coefficient: u128,
    /// value = coefficient × 10^exponent; 0 for zero.
    exponent: i32,
}

fn digit_count(mut n: u128) -> u32 {
    let mut count = 1;
    while n >= 10 {
        n /= 10;
        count += 1;
    }
    count
}

impl Number {
    /// Zero.
    pub const ZERO: Number = Number { negative: false, coefficient: 0, exponent: 0 };

    /// Parses a number as DynamoDB accepts it on the wire: an optional sign, digits with at most
    /// one `.`, an optional exponent (`e`/`E`, optional sign, digits); no spaces.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        if text.is_empty() {
            return Err(NumberError::Empty);
        }
        let not_numeric = || NumberError::NotNumeric(text.to_string());
        let (negative, rest) = match text.as_bytes()[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent_text) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let mut digits = Vec::with_capacity(mantissa.len());
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        for byte in mantissa.bytes() {
            match byte {
                b'0'..=b'9' => {
                    digits.push(byte - b'0');
                    if seen_point {
                        fraction_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return Err(not_numeric()),
            }
        }
        if digits.is_empty() {
            return Err(not_numeric());
        }
        let mut exponent: i64 = 0;
        if let Some(exponent_text) = exponent_text {
            let (exp_negative, exp_digits) = match exponent_text.as_bytes().first() {
                Some(b'-') => (true, &exponent_text[1..]),
                Some(b'+') => (false, &exponent_text[1..]),
                _ => (false, exponent_text),
            };
            if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_numeric());
            }
            // Saturate: anything past a billion is out of range whatever the digits.
            for byte in exp_digits.bytes() {
                exponent = (exponent * 10 + i64::from(byte - b'0')).min(1_000_000_000);
            }
            if exp_negative {
                exponent = -exponent;
            }
        }
        exponent -= fraction_digits;
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else { return Ok(Number::ZERO) };
        let last = digits.iter().rposition(|&d| d != 0).expect("a non-zero digit exists");
        let significant = &digits[first..=last];
        exponent += (digits.len() - 1 - last) as i64;
        let leading = exponent + significant.len() as i64 - 1;
        if leading > MAX_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if leading < MIN_EXPONENT {
            return Err(NumberError::Underflow);
        }
        if significant.len() > MAX_DIGITS as usize {
            return Err(NumberError::TooManyDigits);
        }
        let coefficient = significant.iter().fold(0u128, |n, &d| n * 10 + u128::from(d));
        Ok(Number { negative, coefficient, exponent: exponent as i32 })
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    /// Whether this is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Significant digits (1 for zero).
    pub fn significant_digits(&self) -> u32 {
        digit_count(self.coefficient)
    }

    /// Exponent of the leading digit.
    fn leading_exponent(&self) -> i64 {
        i64::from(self.exponent) + i64::from(self.significant_digits()) - 1
    }

    /// Bytes this number takes in an item, as DynamoDB counts them: its significant digits are
    /// stored in base 100, two digits per byte with pairs aligned on the decimal point, plus one
    /// byte (the exponent), plus one for a negative sign. This agrees with every size measured
    /// against AWS in dynoxide's `test_size_number_matches_dynamodb` (PR #195: "1.5" = 3,
    /// "0.15" = 2, "100.5" = 4, "-42" = 3, "1E125" = 2) and with the documented approximation
    /// "1 byte per two significant digits, plus 1 byte".
    pub fn size(&self) -> usize {
        if self.is_zero() {
            return 1;
        }
        let high = self.leading_exponent().div_euclid(2);
        let low = i64::from(self.exponent).div_euclid(2);
        (high - low + 1) as usize + 1 + usize::from(self.negative)
    }

    /// Bytes whose unsigned lexicographic order is this number's numeric order (a key column
    /// compared with `memcmp`): a class byte (negative 0x01, zero 0x02, positive 0x03), the
    /// leading digit's exponent biased into one byte, then the significant digits; for a
    /// negative number exponent and digits are complemented and end in 0xFF, so that a longer
    /// coefficient (a larger magnitude) sorts first.
    pub fn order_key(&self) -> Vec<u8> {
        if self.is_zero() {
            return vec![0x02];
        }
        let digits = self.coefficient.to_string();
        // MIN_EXPONENT..=MAX_EXPONENT is -130..=125: 0..=255 once biased.
        let exponent = (self.leading_exponent() - MIN_EXPONENT) as u8;
        let mut key = Vec::with_capacity(digits.len() + 3);
        if self.negative {
            key.push(0x01);
            key.push(!exponent);
            key.extend(digits.bytes().map(|d| b'9' - d + b'0'));
            key.push(0xFF);
        } else {
            key.push(0x03);
            key.push(exponent);
            key.extend(digits.bytes());
        }
        key
    }

    /// The number with its sign flipped.
    pub fn negated(&self) -> Number {
        if self.is_zero() {
            return self.clone();
        }
        Number { negative: !self.negative, ..self.clone() }
    }

    /// `self + other`, exact, or DynamoDB's refusal when the result is out of range or needs
    /// more than 38 digits.
    pub fn checked_add(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        let base = self.exponent.min(other.exponent);
        let a = Digits::of(self, base);
        let b = Digits::of(other, base);
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, a.add(&b))
        } else {
            match a.cmp_magnitude(&b) {
                Ordering::Equal => return Ok(Number::ZERO),
                Ordering::Greater => (self.negative, a.sub(&b)),
                Ordering::Less => (other.negative, b.sub(&a)),
            }
        };
        magnitude.into_number(negative, base)
    }

    /// `self - other`, as [`Number::checked_add`].
    pub fn checked_sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.checked_add(&other.negated())
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        self.leading_exponent().cmp(&other.leading_exponent()).then_with(|| {
            // Same leading exponent: compare the coefficients scaled to 38 digits.
            let scale = |n: &Number| n.coefficient * 10u128.pow(MAX_DIGITS - n.significant_digits());
            scale(self).cmp(&scale(other))
        })
    }
}

/// A magnitude as little-endian decimal digits, for exact sums.
struct Digits(Vec<u8>);

impl Digits {
    fn of(number: &Number, base: i32) -> Digits {
        let mut digits = vec![0u8; (number.exponent - base) as usize];
        let mut c = number.coefficient;
        while c > 0 {
            digits.push((c % 10) as u8);
            c /= 10;
        }
        Digits(digits)
    }

    fn add(&self, other: &Digits) -> Digits {
        let len = self.0.len().max(other.0.len());
        let mut out = Vec::with_capacity(len + 1);
        let mut carry = 0;
        for i in 0..len {
            let sum = self.0.get(i).copied().unwrap_or(0) + other.0.get(i).copied().unwrap_or(0) + carry;
            out.push(sum % 10);
            carry = sum / 10;
        }
        if carry > 0 {
            out.push(carry);
        }
        Digits(out)
    }

    /// `self - other`, where `self` is the larger.
    fn sub(&self, other: &Digits) -> Digits {
        let mut out = Vec::with_capacity(self.0.len());
        let mut borrow = 0i8;
        for i in 0..self.0.len() {
            let mut d = self.0[i] as i8 - other.0.get(i).copied().unwrap_or(0) as i8 - borrow;
            borrow = 0;
            if d < 0 {
                d += 10;
                borrow = 1;
            }
            out.push(d as u8);
        }
        Digits(out)
    }

    fn significant(&self) -> &[u8] {
        let end = self.0.iter().rposition(|&d| d != 0).map_or(0, |p| p + 1);
        &self.0[..end]
    }

    fn cmp_magnitude(&self, other: &Digits) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn into_number(self, negative: bool, base: i32) -> Result<Number, NumberError> {
        let digits = self.significant();
        let Some(low) = digits.iter().position(|&d| d != 0) else { return Ok(Number::ZERO) };
        let digits = &digits[low..];
        let exponent = i64::from(base) + low as i64;
        let leading = exponent + digits.len() as i64 - 1;
        if leading > MAX_EXPONENT || digits.len() > MAX_DIGITS as usize {
            return Err(NumberError::Overflow);
        }
        if leading < MIN_EXPONENT {
            return Err(NumberError::Underflow);
        }
        let coefficient = digits.iter().rev().fold(0u128, |n, &d| n * 10 + u128::from(d));
        Ok(Number { negative, coefficient, exponent: exponent as i32 })
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl FromStr for Number {
    type Err = NumberError;
    fn from_str(text: &str) -> Result<Number, NumberError> {
        Number::parse(text)
    }
}

impl From<i64> for Number {
    fn from(n: i64) -> Number {
        Number::parse(&n.to_string()).expect("an i64 is a valid DynamoDB number")
    }
}

/// Plain decimal notation without exponent, leading or trailing zeros, as DynamoDB returns
/// numbers (1E+2 reads back as "100": boto3 issue #2500 shows 1e100 read back in full).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits = self.coefficient.to_string();
        let exponent = i64::from(self.exponent);
        if exponent >= 0 {
            f.write_str(&digits)?;
            for _ in 0..exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let fraction = (-exponent) as usize;
        if fraction < digits.len() {
            let (int, frac) = digits.split_at(digits.len() - fraction);
            write!(f, "{int}.{frac}")
        } else {
            f.write_str("0.")?;
            for _ in 0..fraction - digits.len() {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}
