use std::path::Path;

#[test]
fn shipped_specs_load_and_lint_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let set = apiconform::spec::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.apis.len(), 5, "five API specs");
    assert_eq!(set.families.len(), 3, "three family specs");
}
