/*
 * FUZZ_ORACLE marks a harness function that only checks or generates
 * bytes: the fuzzer should be guided by the code under test, not by
 * loops of the harness's own checker. Without coverage instrumentation
 * such a function adds no features (each byte compared in a body check
 * otherwise counts as a comparison to trace), and a long campaign runs
 * several times faster. Sanitizers still apply to it.
 */
#ifndef DCMF_FUZZ_ORACLE_H
#define DCMF_FUZZ_ORACLE_H

#if defined(__clang__)
#define FUZZ_ORACLE __attribute__((no_sanitize("coverage")))
#else
#define FUZZ_ORACLE
#endif

#endif
