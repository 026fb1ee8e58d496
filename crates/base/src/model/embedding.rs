//! Appearance embeddings as plain vectors: kept L2-normalised, so the dot product is the
//! cosine similarity.

/// Cosine similarity of two normalised embeddings: 1 same direction, 0 unrelated; 0 when
/// their lengths differ (two models' embeddings are never compared).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
