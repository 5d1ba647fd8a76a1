//! `diagnose`: the command-line front end of rnn-gradcheck.

fn main() {
    println!(
        "diagnose — find and explain bugs in hand-written RNN gradients\n\n\
         usage: diagnose [report] [--out DIR] [--seed N] [--quick]\n\
         \n\
         The report and check subcommands are being built; see README.md."
    );
}
