#!/usr/bin/env Rscript
# Reference values for benchvm's statistics module (agent/src/stats).
#
# Writes agent/tests/golden/stats_reference.json, which
# agent/tests/it/stats_golden.rs replays against the Rust implementation.
# Run from the repository root:
#
#   Rscript scripts/stats_reference.R
#
# Needs only base R (no packages); JSON is written by hand. Deterministic:
# one set.seed() below, and every input is stored both as a decimal (for
# people) and as the hex of its IEEE-754 bits (for the test, so parsing cannot
# move an input by one ulp and change which values tie or equal mu).
#
# What is compared with what:
#   * signed-rank test: R's wilcox.test(d, mu, alternative, exact = NULL,
#     correct = TRUE) — statistic V, p-value, and whether the exact method ran.
#   * shift estimate and CI (two-sided, at `confidence`):
#       - exact case (wilcox.test(d, mu = 0, conf.int = TRUE) is exact): R's
#         estimate and conf.int, plus the achieved level
#         1 - 2 * psignrank(qu - 1, n) computed here with R's own qu;
#       - otherwise: benchvm deliberately uses the Hollander-Wolfe order
#         statistic instead of R's uniroot inversion, so the reference is
#         computed independently below from sorted Walsh averages, qnorm and
#         pnorm. R's own (uniroot) numbers are stored as "r_uniroot_*" for
#         information only.
#       - the estimate is the median of the Walsh averages in both cases (R's
#         exact path reports exactly that; its approximate path reports a
#         uniroot solution instead, again stored for information only).
#   * Benjamini-Hochberg: p.adjust(p, "BH").

options(warn = 1)
set.seed(20240917)

out_path <- file.path("agent", "tests", "golden", "stats_reference.json")
if (!dir.exists(dirname(out_path))) {
  stop("run from the repository root (", dirname(out_path), " not found)")
}

t_min <- log(1.02) # minimum relevant effect: delta = 2 %

# ---------------------------------------------------------------- JSON helpers

json_num <- function(x) {
  if (length(x) != 1L || !is.finite(x)) stop("cannot write non-finite number ", x)
  sprintf("%.17g", x)
}
json_str <- function(s) sprintf("\"%s\"", s)
json_bool <- function(b) if (isTRUE(b)) "true" else "false"
json_num_or_null <- function(x) if (length(x) == 1L && is.finite(x)) json_num(x) else "null"
json_array <- function(items) {
  if (length(items) == 0L) "[]" else paste0("[", paste(items, collapse = ", "), "]")
}
json_nums <- function(v) json_array(vapply(v, json_num, ""))
hex_bits <- function(v) {
  vapply(v, function(x) paste(as.character(writeBin(x, raw(), endian = "big")), collapse = ""), "")
}
json_bits <- function(v) json_array(json_str(hex_bits(v)))
json_object <- function(fields, indent = "    ") {
  keys <- names(fields)
  body <- paste0(indent, "  ", json_str(keys), ": ", unlist(fields), collapse = ",\n")
  paste0("{\n", body, "\n", indent, "}")
}

# ---------------------------------------------------------------- data

# Paired timings in nanoseconds: a per-round factor shared by base and head
# (the reason for pairing), then a true log shift plus independent noise.
paired_timings <- function(n, shift, noise = 0.01) {
  round_factor <- exp(rnorm(n, 0, 0.05))
  base <- 2e6 * round_factor * exp(rnorm(n, 0, noise))
  head <- 2e6 * round_factor * exp(shift + rnorm(n, 0, noise))
  list(base = base, head = head)
}

# Coarse differences: rounding to 1/100 creates ties, and zeros.
coarse <- function(n, shift, sd = 0.02) round(rnorm(n, shift, sd), 2)

walsh_sorted <- function(d) {
  s <- outer(d, d, "+")
  sort(s[!lower.tri(s)]) / 2
}

r_alternative <- function(alt) switch(alt, greater = "greater", less = "less", two_sided = "two.sided")

# ---------------------------------------------------------------- references

reference_test <- function(d, mu, alternative) {
  w <- suppressWarnings(wilcox.test(d, mu = mu, alternative = r_alternative(alternative),
                                    exact = NULL, correct = TRUE))
  p <- w$p.value
  deviation <- NULL
  if (is.nan(p) && all(d - mu == 0)) {
    # R: 0/0 in the normal approximation when nothing is left after dropping
    # zeros. benchvm reports 1 (no evidence of any shift), as for one-sided.
    p <- 1
    deviation <- "R returns NaN for the two-sided p-value when every d - mu is 0; benchvm returns 1"
  }
  list(statistic = unname(w$statistic), p_value = p,
       exact = grepl("exact", w$method, fixed = TRUE), deviation = deviation)
}

reference_shift <- function(d, confidence) {
  n <- length(d)
  m <- n * (n + 1) / 2
  w <- walsh_sorted(d)
  alpha <- 1 - confidence
  r <- suppressWarnings(wilcox.test(d, mu = 0, alternative = "two.sided", exact = NULL,
                                    correct = TRUE, conf.int = TRUE, conf.level = confidence))
  exact <- grepl("exact", r$method, fixed = TRUE)
  if (exact) {
    qu <- qsignrank(alpha / 2, n)
    if (qu == 0) qu <- 1
    res <- list(estimate = unname(r$estimate), lower = r$conf.int[1], upper = r$conf.int[2],
                achieved_confidence = 1 - 2 * psignrank(qu - 1, n), exact = TRUE,
                source = "r_wilcox_test")
    # The exact path of R is the order-statistic rule over Walsh averages.
    stopifnot(res$estimate == median(w), res$lower == w[qu], res$upper == w[m - qu + 1])
  } else {
    # Hollander & Wolfe large-sample order statistic, computed independently.
    sigma <- sqrt(n * (n + 1) * (2 * n + 1) / 24)
    z <- qnorm(alpha / 2, lower.tail = FALSE)
    k <- floor(m / 2 - z * sigma)
    k <- min(max(k, 1), ceiling(m / 2))
    res <- list(estimate = median(w), lower = w[k], upper = w[m + 1 - k],
                achieved_confidence = 1 - 2 * pnorm((k - 0.5 - m / 2) / sigma),
                exact = FALSE, source = "hollander_wolfe",
                r_uniroot_estimate = unname(r$estimate),
                r_uniroot_lower = r$conf.int[1], r_uniroot_upper = r$conf.int[2])
  }
  res
}

# ---------------------------------------------------------------- cases

cases <- list()
add_case <- function(name, mu, alternative, confidence, d = NULL, pairs = NULL) {
  if (!is.null(pairs)) d <- log(pairs$head) - log(pairs$base)
  cases[[length(cases) + 1L]] <<- list(name = name, d = d, pairs = pairs, mu = mu,
                                       alternative = alternative, confidence = confidence)
}

# Exact path (n < 50, continuous data): every alternative, mu = 0 and +-t.
add_case("n1_regressed_greater", 0, "greater", 0.95, pairs = paired_timings(1, 0.03))
add_case("n2_two_sided_99", 0, "two_sided", 0.99, pairs = paired_timings(2, 0.01))
add_case("n3_improved_less_mu", -t_min, "less", 0.95, pairs = paired_timings(3, -0.05))
add_case("n5_regressed_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(5, 0.05))
add_case("n5_unshifted_two_sided_99", 0, "two_sided", 0.99, pairs = paired_timings(5, 0))
add_case("n8_unshifted_two_sided", 0, "two_sided", 0.95, pairs = paired_timings(8, 0))
add_case("n8_improved_less_mu_99", -t_min, "less", 0.99, pairs = paired_timings(8, -0.04))
add_case("n10_shifted_two_sided_mu", t_min, "two_sided", 0.95, pairs = paired_timings(10, 0.05))
add_case("n12_regressed_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(12, 0.06))
add_case("n12_unshifted_less_mu", -t_min, "less", 0.95, pairs = paired_timings(12, 0))
add_case("n12_unshifted_greater_80", 0, "greater", 0.80, pairs = paired_timings(12, 0))
add_case("n20_shifted_two_sided_99", 0, "two_sided", 0.99, pairs = paired_timings(20, 0.02))
add_case("n20_improved_less_mu", -t_min, "less", 0.95, pairs = paired_timings(20, -0.05))
add_case("n20_improved_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(20, -0.05))
add_case("n30_unshifted_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(30, 0))
add_case("n30_all_positive_greater", 0, "greater", 0.99, pairs = paired_timings(30, 0.5))
add_case("n49_regressed_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(49, 0.03))
add_case("n49_unshifted_two_sided_99", 0, "two_sided", 0.99, pairs = paired_timings(49, 0))

# Normal approximation because n >= 50 (no ties).
add_case("n50_boundary_two_sided", 0, "two_sided", 0.95, pairs = paired_timings(50, 0.002))
add_case("n60_regressed_greater_mu", t_min, "greater", 0.95, pairs = paired_timings(60, 0.03))
add_case("n60_unshifted_less_mu_99", -t_min, "less", 0.99, pairs = paired_timings(60, 0))
add_case("n120_shifted_two_sided", 0, "two_sided", 0.95, pairs = paired_timings(120, 0.01))
add_case("n120_improved_less_mu", -t_min, "less", 0.99, pairs = paired_timings(120, -0.05))
add_case("n120_all_positive_greater", 0, "greater", 0.95, pairs = paired_timings(120, 0.5))

# Normal approximation because of ties and/or zeros (any n).
add_case("ties_n2_mirror", 0, "two_sided", 0.95, d = c(0.1, -0.1))
add_case("ties_n12_greater", 0, "greater", 0.95, d = coarse(12, 0.02))
add_case("ties_n49_two_sided_99", 0, "two_sided", 0.99, d = coarse(49, 0.005))
add_case("ties_n60_less_mu", -t_min, "less", 0.95, d = coarse(60, -0.03))
add_case("zeros_n8_two_sided", 0, "two_sided", 0.95, d = c(0, 0.013, -0.004, 0, 0.021, 0.007, -0.011, 0.016))
add_case("zeros_ties_n30_less_mu", -t_min, "less", 0.99, d = c(coarse(26, -0.01), 0, 0, 0, 0))
# A single d equal to mu: a zero for the test (approximate), while the
# interval, which ignores mu, stays exact.
add_case("zero_after_mu_n10_greater", t_min, "greater", 0.95,
         d = c(t_min, rnorm(9, 0.03, 0.01)))
# The reverse: |d| tie at mu = 0 (interval approximate) that the shift by mu
# breaks (test exact).
add_case("tie_broken_by_mu_n8_two_sided", t_min, "two_sided", 0.95,
         d = c(0.05, -0.05, rnorm(6, 0.01, 0.02)))
add_case("equal_to_mu_n4_greater", t_min, "greater", 0.95, d = rep(t_min, 4))
add_case("integer_timings_n20_two_sided", 0, "two_sided", 0.95,
         pairs = list(base = as.numeric(sample(1000:1010, 20, replace = TRUE)),
                      head = as.numeric(sample(1002:1012, 20, replace = TRUE))))
add_case("n1_zero_less", 0, "less", 0.95, d = 0)
add_case("all_zero_n5_greater", 0, "greater", 0.95, d = rep(0, 5))
add_case("all_zero_n5_less", 0, "less", 0.99, d = rep(0, 5))
add_case("all_zero_n5_two_sided", 0, "two_sided", 0.95, d = rep(0, 5))

render_case <- function(case) {
  test <- reference_test(case$d, case$mu, case$alternative)
  shift <- reference_shift(case$d, case$confidence)
  fields <- list(
    name = json_str(case$name),
    d = json_nums(case$d), d_bits = json_bits(case$d),
    base_bits = if (is.null(case$pairs)) "null" else json_bits(case$pairs$base),
    head_bits = if (is.null(case$pairs)) "null" else json_bits(case$pairs$head),
    mu = json_num(case$mu), mu_bits = json_str(hex_bits(case$mu)),
    alternative = json_str(case$alternative),
    confidence = json_num(case$confidence), confidence_bits = json_str(hex_bits(case$confidence)),
    test = json_object(list(
      statistic = json_num(test$statistic), p_value = json_num(test$p_value),
      exact = json_bool(test$exact),
      deviation = if (is.null(test$deviation)) "null" else json_str(test$deviation)
    ), indent = "      "),
    shift = json_object(c(
      list(estimate = json_num(shift$estimate), lower = json_num(shift$lower),
           upper = json_num(shift$upper),
           achieved_confidence = json_num(shift$achieved_confidence),
           exact = json_bool(shift$exact), source = json_str(shift$source)),
      if (!shift$exact) list(
        r_uniroot_estimate = json_num_or_null(shift$r_uniroot_estimate),
        r_uniroot_lower = json_num_or_null(shift$r_uniroot_lower),
        r_uniroot_upper = json_num_or_null(shift$r_uniroot_upper))
    ), indent = "      ")
  )
  list(json = json_object(fields), p_value = test$p_value, test_exact = test$exact,
       shift_exact = shift$exact)
}

rendered <- lapply(cases, render_case)

# ---------------------------------------------------------------- BH

bh_cases <- list(
  textbook = c(0.01, 0.04, 0.03, 0.005),
  unsorted_random = runif(15)^3,
  ties = c(0.02, 0.02, 0.01, 0.04, 0.04, 0.04, 0.5, 0.01),
  with_ones = c(1, 0.001, 1, 0.2, 1),
  with_zeros = c(0, 0.05, 0, 0.5, 0.049),
  single = 0.3,
  empty = numeric(0),
  large_mixture = sample(c(runif(180), rbeta(20, 0.1, 5))),
  from_this_file = vapply(rendered, function(r) r$p_value, 0)
)
render_bh <- function(name, p) {
  json_object(list(name = json_str(name), p = json_nums(p), p_bits = json_bits(p),
                   q = json_nums(p.adjust(p, "BH"))))
}
bh_json <- mapply(render_bh, names(bh_cases), bh_cases)

# ---------------------------------------------------------------- output

json <- paste0(
  "{\n",
  "  \"generator\": \"scripts/stats_reference.R\",\n",
  "  \"r_version\": ", json_str(R.version.string), ",\n",
  "  \"cases\": [\n    ", paste(vapply(rendered, function(r) r$json, ""), collapse = ",\n    "), "\n  ],\n",
  "  \"benjamini_hochberg\": [\n    ", paste(bh_json, collapse = ",\n    "), "\n  ]\n",
  "}\n"
)
writeLines(json, out_path, sep = "")

test_exact <- vapply(rendered, function(r) r$test_exact, TRUE)
shift_exact <- vapply(rendered, function(r) r$shift_exact, TRUE)
cat(sprintf("wrote %s: %d test/shift cases (test: %d exact, %d approximate; shift: %d exact, %d Hollander-Wolfe), %d BH cases\n",
            out_path, length(rendered), sum(test_exact), sum(!test_exact),
            sum(shift_exact), sum(!shift_exact), length(bh_json)))
