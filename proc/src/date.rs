//! Dates without a date library: RFC 5322 for mail, ISO 8601 for log files.

struct Civil {
    days: i64,
    y: i64,
    mo: i64,
    d: i64,
    h: u64,
    m: u64,
    s: u64,
}

/// Civil-from-days (proleptic Gregorian) for a Unix time, UTC.
fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    Civil {
        days,
        y,
        mo,
        d,
        h,
        m,
        s,
    }
}

/// "Tue, 24 Nov 2026 10:00:00 +0000" for a Unix time.
pub fn rfc5322_date(secs: u64) -> String {
    let Civil {
        days,
        y,
        mo,
        d,
        h,
        m,
        s,
    } = civil(secs);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        WD[days.rem_euclid(7) as usize],
        d,
        MO[(mo - 1) as usize],
        y,
        h,
        m,
        s
    )
}

/// "2026-11-24T10:00:00Z" for a Unix time.
pub fn iso8601(secs: u64) -> String {
    let Civil {
        y, mo, d, h, m, s, ..
    } = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_forms_of_one_time() {
        // 2026-11-24 10:00:00 UTC, a Tuesday.
        let t = 1_795_514_400;
        assert_eq!(super::rfc5322_date(t), "Tue, 24 Nov 2026 10:00:00 +0000");
        assert_eq!(super::iso8601(t), "2026-11-24T10:00:00Z");
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
    }
}
