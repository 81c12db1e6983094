// sqlx::migrate! embeds the migrations at compile time: rebuild when a file is added or
// changed, not only when the crate's sources change.
fn main() {
    for dir in ["platform", "identity", "learning", "instructor"] {
        println!("cargo:rerun-if-changed=../../migrations/{dir}");
    }
}
