//! A minimal JSON writer: escaping and number formatting for output written by hand (fast,
//! since the formatters stream large coordinate arrays: integers through `itoa`, other numbers
//! through `ryu`'s shortest round-trip form, no `std::fmt` machinery per number).

use std::fmt::Write;

/// Appends `s` as a JSON string literal (quotes included).
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":`.
pub fn push_key(out: &mut String, key: &str) {
    push_str(out, key);
    out.push(':');
}

/// Appends a number in its shortest round-trip form; NaN and infinities become `null`.
pub fn push_f64(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        // Whole numbers (pixel corners, metre grids) print faster as integers.
        out.push_str(itoa::Buffer::new().format(x as i64));
    } else if x.is_finite() {
        // The same shortest round-trip digits as `{x}`, in ryu's notation (`1e300`,
        // `1.5e-7`): the same number to any JSON reader.
        out.push_str(ryu::Buffer::new().format_finite(x));
    } else {
        out.push_str("null");
    }
}

/// Like [`push_f64`] for an `f32`, printed as the `f32` it is (`0.9`, not `0.899999976...`).
pub fn push_f32(out: &mut String, x: f32) {
    if x.fract() == 0.0 && x.abs() < 1e7 {
        out.push_str(itoa::Buffer::new().format(x as i32));
    } else if x.is_finite() {
        out.push_str(ryu::Buffer::new().format_finite(x));
    } else {
        out.push_str("null");
    }
}

/// Appends an integer.
pub fn push_int(out: &mut String, x: impl Into<i128>) {
    out.push_str(itoa::Buffer::new().format(x.into()));
}

/// Appends `[x,y]`.
pub fn push_point(out: &mut String, p: (f64, f64)) {
    out.push('[');
    push_f64(out, p.0);
    out.push(',');
    push_f64(out, p.1);
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_numbers() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
        let mut s = String::new();
        push_f64(&mut s, 500000.0);
        s.push(' ');
        push_f64(&mut s, f64::NAN);
        s.push(' ');
        push_f32(&mut s, 0.9);
        s.push(' ');
        push_int(&mut s, 42u32);
        s.push(' ');
        push_point(&mut s, (1.5, -2.0));
        s.push(' ');
        push_f64(&mut s, -0.0);
        s.push(' ');
        push_f64(&mut s, 1e300);
        assert_eq!(s, "500000 null 0.9 42 [1.5,-2] 0 1e300");
    }

    #[test]
    fn numbers_read_back_as_std_formats_them() {
        // Shortest round-trip text: parses to the very number `{x}` (std) prints.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = match i % 4 {
                0 => f64::from_bits(seed),
                1 => 101985.0 + (seed % 4096) as f64 * 300.0379266750948,
                2 => (seed % 1_000_000) as f64 / 1e6 - 0.5,
                _ => (seed as f64) * 1e-3,
            };
            if !x.is_finite() {
                continue;
            }
            let mut s = String::new();
            push_f64(&mut s, x);
            let back: f64 = s.parse().unwrap();
            assert_eq!(back, format!("{x}").parse::<f64>().unwrap(), "{x}: {s}");
            let y = x as f32;
            if y.is_finite() {
                let mut s = String::new();
                push_f32(&mut s, y);
                assert_eq!(s.parse::<f32>().unwrap(), y, "{y}: {s}");
            }
        }
    }
}
