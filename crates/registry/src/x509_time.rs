//! The validity period of an X.509 certificate, read from its DER: what [`crate::trust`]
//! needs to refuse an expired pinned certificate (webpki checks validity only on the chains
//! it builds, and exposes no parsed certificate fields).
//!
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
//! serialNumber, signature, issuer, validity SEQUENCE { notBefore, notAfter }, … } … }`,
//! each time a UTCTime (`YYMMDDHHMMSSZ`) or a GeneralizedTime (`YYYYMMDDHHMMSSZ`).

/// `(not before, not after)` in seconds since the Unix epoch; `None` when the DER is not
/// shaped like a certificate.
pub(crate) fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (cert, _) = element(der, 0x30)?;
    let (mut tbs, _) = element(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs, 0xa0)?.1; // version
    }
    for tag in [0x02, 0x30, 0x30] {
        tbs = element(tbs, tag)?.1; // serialNumber, signature, issuer
    }
    let (validity, _) = element(tbs, 0x30)?;
    let (from, rest) = time(validity)?;
    let (until, _) = time(rest)?;
    Some((from, until))
}

/// The contents of the element of type `tag` at the start of `input`, and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)? as usize;
    let (len, header) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = input
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((input.get(header..end)?, input.get(end..)?))
}

/// A UTCTime or GeneralizedTime in Zulu, as Unix seconds, and what follows it.
fn time(input: &[u8]) -> Option<(u64, &[u8])> {
    let tag = *input.first()?;
    let (text, rest) = element(input, tag)?;
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let digits = |s: &str| -> Option<u64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, rest_text) = match tag {
        // RFC 5280: two-digit years 50–99 are 19xx, 00–49 are 20xx.
        0x17 => {
            let yy = digits(text.get(0..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        0x18 => (digits(text.get(0..4)?)?, text.get(4..)?),
        _ => return None,
    };
    if rest_text.len() != 10 {
        return None;
    }
    let field = |i: usize| digits(&rest_text[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (h, m, s) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + m * 60 + s, rest))
}

/// Days from 1970-01-01 to `year-month-day` (Howard Hinnant's algorithm), for years ≥ 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 7), 20_794);
    }

    #[test]
    fn reads_both_time_forms() {
        // validity SEQUENCE { UTCTime 260101000000Z, GeneralizedTime 20270101000000Z }
        let mut v = vec![0x17, 13];
        v.extend(b"260101000000Z");
        v.extend([0x18, 15]);
        v.extend(b"20270101000000Z");
        let mut period = vec![0x30, v.len() as u8];
        period.extend(v);
        // tbs: version, serial, signature, issuer, validity
        let mut tbs = vec![0xa0, 3, 0x02, 1, 2, 0x02, 1, 7, 0x30, 0, 0x30, 0];
        tbs.extend(period);
        let mut cert = vec![0x30, tbs.len() as u8];
        cert.extend(tbs);
        let der = [vec![0x30, cert.len() as u8], cert].concat();
        let day = 86_400;
        assert_eq!(
            validity(&der),
            Some((
                days_from_civil(2026, 1, 1) * day,
                days_from_civil(2027, 1, 1) * day
            ))
        );
        assert_eq!(validity(b"\x30\x01"), None);
    }
}
