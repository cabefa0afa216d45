//! `--shard i/N`: a deterministic slice of a run's subset indices, so that N machines (a
//! Slurm array, a Kubernetes indexed job) can share one run.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count`, numbered from 0 as `SLURM_ARRAY_TASK_ID` and Kubernetes'
/// `JOB_COMPLETION_INDEX` are. Written `i/N`.
///
/// Indices are dealt round-robin (`subset_index % count == index`) rather than in ranges,
/// so the shards stay balanced, and each keeps its indices, when a run's count grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// Which shard, below `count`.
    pub index: u32,
    /// How many shards share the run, at least 1.
    pub count: u32,
}

/// Why a `--shard` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not two whole numbers separated by `/`.
    #[error("shard `{0}`: expected i/N, the shard's index and the number of shards, such as 0/4")]
    Syntax(String),
    /// `i/0`.
    #[error("shard `{0}`: the number of shards must be at least 1")]
    NoShards(String),
    /// `i/N` with `i >= N`.
    #[error(
        "shard `{text}`: the index must be below the number of shards, {count} \
         (shards are numbered from 0, as Slurm array and Kubernetes job indices are)"
    )]
    IndexTooLarge {
        /// The value as given.
        text: String,
        /// The number of shards it gave.
        count: u32,
    },
}

impl Shard {
    /// The whole run on one machine.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`, checked as [`FromStr`] checks it.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        let text = || format!("{index}/{count}");
        if count == 0 {
            return Err(ShardError::NoShards(text()));
        }
        if index >= count {
            return Err(ShardError::IndexTooLarge {
                text: text(),
                count,
            });
        }
        Ok(Self { index, count })
    }

    /// Whether the subset at `subset_index` is this shard's to write. A shard with no
    /// count (which [`Shard::new`] refuses to make) holds nothing.
    pub fn contains(&self, subset_index: u64) -> bool {
        self.count != 0 && subset_index % u64::from(self.count) == u64::from(self.index)
    }

    /// This shard's indices among `0..total`, ascending.
    pub fn indices(&self, total: u64) -> impl Iterator<Item = u64> + use<> {
        let step = usize::try_from(self.count).unwrap_or(usize::MAX).max(1);
        let start = if self.count == 0 {
            total
        } else {
            u64::from(self.index)
        };
        (start..total).step_by(step)
    }

    /// Whether this is the whole run.
    pub fn is_all(&self) -> bool {
        self.count == 1
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(text.to_string());
        let (index, count) = text.trim().split_once('/').ok_or_else(syntax)?;
        let index: u32 = index.trim().parse().map_err(|_| syntax())?;
        let count: u32 = count.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count).map_err(|error| match error {
            ShardError::NoShards(_) => ShardError::NoShards(text.to_string()),
            ShardError::IndexTooLarge { count, .. } => ShardError::IndexTooLarge {
                text: text.to_string(),
                count,
            },
            ShardError::Syntax(_) => syntax(),
        })
    }
}

impl serde::Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let shard: Shard = "2/5".parse().unwrap();
        assert_eq!(shard, Shard { index: 2, count: 5 });
        assert_eq!(shard.to_string(), "2/5");
        assert_eq!(" 0/1 ".parse::<Shard>().unwrap(), Shard::ALL);
        assert!(Shard::ALL.is_all());
        assert_eq!(serde_json::to_string(&shard).unwrap(), r#""2/5""#);
        assert_eq!(serde_json::from_str::<Shard>(r#""2/5""#).unwrap(), shard);
    }

    #[test]
    fn refuses_bad_shards_saying_why() {
        let error = |text: &str| text.parse::<Shard>().unwrap_err().to_string();
        let too_large = error("3/2");
        assert!(
            too_large.contains("`3/2`") && too_large.contains("below"),
            "{too_large}"
        );
        assert!(too_large.contains("numbered from 0"), "{too_large}");
        assert!(error("2/2").contains("below"));
        assert!(error("0/0").contains("at least 1"), "{}", error("0/0"));
        for bad in ["a/b", "1", "1/", "/2", "-1/2", "1/2/3", ""] {
            assert!(error(bad).contains("expected i/N"), "{bad}: {}", error(bad));
        }
        assert!(serde_json::from_str::<Shard>(r#""4/4""#).is_err());
        assert_eq!(Shard::new(1, 0), Err(ShardError::NoShards("1/0".into())));
    }

    #[test]
    fn shards_partition_the_indices() {
        for count in 1..=7u32 {
            for total in [0u64, 1, 6, 7, 100] {
                let mut seen = vec![0u32; total as usize];
                for index in 0..count {
                    let shard = Shard::new(index, count).unwrap();
                    let indices: Vec<u64> = shard.indices(total).collect();
                    let contained: Vec<u64> = (0..total).filter(|&i| shard.contains(i)).collect();
                    assert_eq!(indices, contained, "{shard} of {total}");
                    for i in indices {
                        seen[i as usize] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&times| times == 1),
                    "{count} shards of {total}"
                );
            }
        }
        // Balanced: sizes differ by at most one.
        let sizes: Vec<usize> = (0..4)
            .map(|i| Shard::new(i, 4).unwrap().indices(10).count())
            .collect();
        assert_eq!(sizes, [3, 3, 2, 2]);
    }

    #[test]
    fn an_invalid_shard_built_by_hand_holds_nothing() {
        let shard = Shard { index: 0, count: 0 };
        assert!(!shard.contains(0));
        assert_eq!(shard.indices(10).count(), 0);
    }
}
