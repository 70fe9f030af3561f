//! MAC addresses: parsing and the `x` expansion of §1.4 (`rand_complete_hwaddr`).

use std::io::Read;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Expand every `x`/`X` of a hwaddr template with a random hex digit. The character at string
/// index 1 (low nibble of the first octet) uses `rand & 0x0E` so the result is unicast. Other
/// characters are kept; no validation (as LXC).
pub fn expand_hwaddr(template: &str) -> String {
    let mut rng = OsRng::default();
    expand_hwaddr_with(template, &mut || rng.next_u8())
}

/// `expand_hwaddr` with a caller-supplied random byte source (for tests).
pub fn expand_hwaddr_with(template: &str, rng: &mut dyn FnMut() -> u8) -> String {
    template
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if c == 'x' || c == 'X' {
                let r = rng();
                let mask = if i == 1 { 0x0E } else { 0x0F };
                HEX[(r & mask) as usize] as char
            } else {
                c
            }
        })
        .collect()
}

/// Expand `x` in every top-level hwaddr line of `doc` with OS randomness (used when
/// `lxrs create` writes a container config). Returns the number of lines changed.
pub fn expand_document_hwaddrs(doc: &mut crate::Document) -> usize {
    let mut rng = OsRng::default();
    doc.expand_hwaddrs(&mut || rng.next_u8())
}

/// Parse `aa:bb:cc:dd:ee:ff` (hex, either case).
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err("a MAC address is six `:`-separated hex octets".into());
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{p}` is not a two-digit hex octet"));
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|e| e.to_string())?;
    }
    Ok(mac)
}

/// Format a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Random bytes from `/dev/urandom` (fallback: std's randomly keyed hasher).
#[derive(Default)]
struct OsRng {
    buf: Vec<u8>,
}

impl OsRng {
    fn next_u8(&mut self) -> u8 {
        if self.buf.is_empty() {
            let mut b = [0u8; 64];
            let ok = std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut b))
                .is_ok();
            if !ok {
                for chunk in b.chunks_mut(8) {
                    chunk.copy_from_slice(&random_u64().to_le_bytes());
                }
            }
            self.buf.extend_from_slice(&b);
        }
        self.buf.pop().unwrap_or(0)
    }
}

/// A random-enough u64 (not for cryptography): std's per-process random hasher keys mixed with
/// time and a counter.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}
