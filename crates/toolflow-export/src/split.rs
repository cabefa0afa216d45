//! The train/validation split: by a seeded hash of the dialogue id, so that a dialogue's side
//! depends only on its id and the seed — not on input order, and not on the other dialogues.

/// Whether `id` falls in the validation share `fraction` (0 to 1) under `seed`: the first 8
/// bytes of BLAKE3(seed as 8 little-endian bytes ‖ id), read as a fraction of 2^64, are below
/// `fraction`.
pub fn is_validation(id: &str, seed: u64, fraction: f64) -> bool {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&seed.to_le_bytes());
    hasher.update(id.as_bytes());
    let bytes: [u8; 8] = hasher.finalize().as_bytes()[..8]
        .try_into()
        .expect("8 bytes");
    (u64::from_le_bytes(bytes) as f64 / 2f64.powi(64)) < fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_seeded_and_near_the_fraction() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("dialogue-{i}")).collect();
        let validation = |seed| {
            ids.iter()
                .filter(|id| is_validation(id, seed, 0.05))
                .count()
        };
        let share = validation(1) as f64 / ids.len() as f64;
        assert!((share - 0.05).abs() < 0.01, "{share}");
        assert_eq!(validation(1), validation(1));
        let a: Vec<bool> = ids.iter().map(|id| is_validation(id, 1, 0.05)).collect();
        let b: Vec<bool> = ids.iter().map(|id| is_validation(id, 2, 0.05)).collect();
        assert_ne!(a, b);
        assert!(!ids.iter().any(|id| is_validation(id, 1, 0.0)));
        assert!(ids.iter().all(|id| is_validation(id, 1, 1.0)));
    }
}
