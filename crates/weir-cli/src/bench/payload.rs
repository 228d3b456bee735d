//! Record values and keys for the load tests: deterministic (the same run writes the same bytes) and
//! random-looking, drawn from 62 letters and digits, so that compression gains about what it gains on text-like
//! data (neither the extreme ratio of all zeros nor nothing, as on uniformly random bytes).

use bytes::Bytes;

/// Letters and digits: about 6 bits of entropy per byte.
const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Bytes of the shared pool beyond one value, so consecutive records start at different places.
const POOL_SLACK: usize = 64 * 1024;

/// SplitMix64: a small, fast, well-mixed generator; fixed seeds make every run write the same bytes.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random-looking bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }
}

/// SplitMix64's output function: a bijection that spreads every input bit over the output.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with letters and digits from `rng`.
pub fn fill_text(rng: &mut SplitMix64, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let mut bits = rng.next_u64();
        for b in chunk {
            *b = ALPHABET[(bits % ALPHABET.len() as u64) as usize];
            bits /= ALPHABET.len() as u64;
        }
    }
}

/// Values and keys of one run: each value is a zero-copy slice of one shared pool.
pub struct Payloads {
    pool: Bytes,
    value_size: usize,
    key_size: usize,
}

impl Payloads {
    /// Values of `value_size` bytes and keys of `key_size` bytes (0: null keys).
    pub fn new(value_size: usize, key_size: usize) -> Payloads {
        let mut pool = vec![0u8; value_size + POOL_SLACK];
        fill_text(&mut SplitMix64::new(0x5745_4952_4245_4E43), &mut pool);
        Payloads {
            pool: Bytes::from(pool),
            value_size,
            key_size,
        }
    }

    /// The value of record `seq`: `value_size` bytes starting at a place that depends on `seq`.
    pub fn value(&self, seq: u64) -> Bytes {
        let start = (mix(seq) % (POOL_SLACK as u64 + 1)) as usize;
        self.pool.slice(start..start + self.value_size)
    }

    /// The key of record `seq` (`None` with a key size of 0): `key_size` letters and digits derived from `seq`,
    /// so keys differ from record to record and spread over the partitions.
    pub fn key(&self, seq: u64) -> Option<Bytes> {
        if self.key_size == 0 {
            return None;
        }
        let mut key = vec![0u8; self.key_size];
        fill_text(&mut SplitMix64::new(mix(seq)), &mut key);
        Some(Bytes::from(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_text_of_the_right_size() {
        let a = Payloads::new(100, 0);
        let b = Payloads::new(100, 0);
        for seq in [0, 1, 2, 1_000_000] {
            assert_eq!(a.value(seq), b.value(seq));
            assert_eq!(a.value(seq).len(), 100);
            assert!(a.value(seq).iter().all(|c| c.is_ascii_alphanumeric()));
        }
        assert_ne!(
            a.value(0),
            a.value(1),
            "records start at different places of the pool"
        );
        assert_eq!(a.key(7), None);
        assert_eq!(Payloads::new(0, 0).value(3).len(), 0);
    }

    #[test]
    fn keys_differ_and_have_the_right_size() {
        let p = Payloads::new(10, 12);
        let keys: std::collections::HashSet<Bytes> = (0..1000).map(|s| p.key(s).unwrap()).collect();
        assert_eq!(keys.len(), 1000);
        assert!(keys.iter().all(|k| k.len() == 12));
    }
}
