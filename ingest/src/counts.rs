//! Counting ids and resources: RFC 22 idsets and the resource counts of
//! an RFC 20 `R`, shared by the record model ([`crate::record`]) and the
//! fast canonicaliser ([`crate::canon`]).

/// The number of ids in an RFC 22 idset string (`"0-3,7"` → 5). `None` if
/// the string is not an idset.
pub fn idset_count(s: &str) -> Option<u64> {
    if let Some(n) = plain_idset_count(s.as_bytes()) {
        return Some(n);
    }
    let s = s.trim();
    let s = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0u64;
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u64 = a.trim().parse().ok()?;
                let b: u64 = b.trim().parse().ok()?;
                if b < a {
                    return None;
                }
                n = n.checked_add((b - a).checked_add(1)?)?;
            }
            None => {
                part.parse::<u64>().ok()?;
                n = n.checked_add(1)?;
            }
        }
    }
    Some(n)
}

/// [`idset_count`] of the common spelling (`0-3,7`: digits, `-` and `,`,
/// no spaces or brackets) in one pass; `None` for anything else, which the
/// general parser then reads (or refuses).
fn plain_idset_count(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 4096 {
        return None;
    }
    let mut n = 0u64;
    let mut rest = s;
    loop {
        let (a, after) = plain_u64(rest)?;
        let (b, after) = match after.split_first() {
            Some((b'-', r)) => plain_u64(r)?,
            _ => (a, after),
        };
        if b < a {
            return None;
        }
        n = n.checked_add((b - a).checked_add(1)?)?;
        match after.split_first() {
            None => return Some(n),
            Some((b',', r)) => rest = r,
            Some(_) => return None,
        }
    }
}

/// Leading decimal digits of `s` as a u64 (at most 19 digits), and the rest.
fn plain_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let len = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if len == 0 || len > 19 {
        return None;
    }
    let v = s[..len].iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
    Some((v, &s[len..]))
}

/// Resource counts derived from an RFC 20 `R` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Ranks (nodes).
    pub nnodes: i64,
    /// Cores.
    pub ncores: i64,
    /// GPUs.
    pub ngpus: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idsets() {
        assert_eq!(idset_count("0"), Some(1));
        assert_eq!(idset_count("0-3,7"), Some(5));
        assert_eq!(idset_count("[1-2]"), Some(2));
        assert_eq!(idset_count(""), Some(0));
        assert_eq!(idset_count("3-1"), None);
        assert_eq!(idset_count("x"), None);
        // Regression (found by tests/canonical_r.rs): the whole u64 range
        // overflowed the count (a panic in debug builds).
        assert_eq!(idset_count("0-18446744073709551615"), None);
        // The one-pass reading of the common spelling agrees with the
        // general one (a leading space takes the general path) on every
        // string of up to 6 characters over "019-, [".
        let alphabet = b"019-, [";
        let mut strings = vec![String::new()];
        for _ in 0..6 {
            let next: Vec<String> =
                strings.iter().flat_map(|s| alphabet.iter().map(move |&c| format!("{s}{}", c as char))).collect();
            for t in &next {
                if let Some(n) = plain_idset_count(t.as_bytes()) {
                    assert_eq!(Some(n), idset_count(&format!(" {t}")), "{t:?}");
                }
            }
            strings = next;
        }
        assert_eq!(plain_idset_count(b"0-18446744073709551615"), None);
    }
}
