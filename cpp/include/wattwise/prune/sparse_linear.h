// Sparse fp32 Linear kernels for pruned weights.
//
// Formats (one row per output channel, k = in_features):
//   CSR16: row_ptr[n + 1] int32 offsets into col[nnz] (uint16 column, so k <= 65536) and
//          val[nnz] fp32; 6 bytes per non-zero instead of 4 per weight, so a memory-bound
//          batch-1 GEMV can win from about 40-50% sparsity.
//   N:M:   every run of M consecutive inputs keeps N values: val[n][k / M * N] fp32 and
//          idx[n][k / M * N] uint8 (position 0..M-1 inside the run, ascending). No row
//          pointers: a row's j-th value belongs to run j / N.
// y[m][n] = sum_k x[m][k] * w[n][k] + bias[n].
//
// The linear entry points check only what is O(out_features) (the row pointers): a full check
// on every call cost as much as the product at 90% sparsity. The kernels clamp every column
// index into range instead, so a malformed structure gives wrong numbers but never reads out
// of bounds. check_csr / check_nm validate a structure fully (O(non-zeros)); call them once
// when a structure comes from outside.
#pragma once

#include <cstdint>

namespace wattwise::prune {

constexpr int64_t kCsrMaxCols = 65536;

// Entry points: check sizes and row pointers (std::invalid_argument), dispatch on
// active_simd(), split output rows over parallel_for. Zero-sized dimensions are valid. For
// m > 1 they allocate the transposed, padded copy of x the kernels read. csr_linear's nnz is
// row_ptr[n]; val and col must hold that many entries.
void csr_linear(const float* x, int64_t m, int64_t k, const int32_t* row_ptr, const uint16_t* col,
                const float* val, const float* bias, int64_t n, float* y);
void nm_linear(const float* x, int64_t m, int64_t k, const float* val, const uint8_t* idx,
               int64_t nn, int64_t mm, const float* bias, int64_t n, float* y);

// row_ptr[0] == 0, non-decreasing, row_ptr[n] == nnz; throws std::invalid_argument.
void check_row_ptr(const int32_t* row_ptr, int64_t n, int64_t nnz);

// Checks a CSR16 structure (monotone row pointers, columns < k); throws std::invalid_argument.
void check_csr(const int32_t* row_ptr, const uint16_t* col, int64_t n, int64_t k);
// Checks N:M shape rules (0 < N <= M <= 255, M divides k) and that indices are < M.
void check_nm(const uint8_t* idx, int64_t n, int64_t k, int64_t nn, int64_t mm);

// Single-threaded kernels over output rows [r_begin, r_end); `_avx2` only on x86-64.
// xt is x transposed to [k][mp] with mp = m rounded up to 8 (zero-padded) when m > 1, and
// plain x ([1][k]) when m == 1. Arguments are not validated.
namespace kernels {

struct Csr {
  const float* xt;
  int64_t k;
  int64_t m;
  int64_t mp;
  const int32_t* row_ptr;
  const uint16_t* col;
  const float* val;
  const float* bias;
  int64_t n;
  float* y;
};

struct Nm {
  const float* xt;
  int64_t m;
  int64_t mp;
  const float* val;
  const uint8_t* idx;
  int64_t nn;
  int64_t mm;
  int64_t kept;  // values per row: k / M * N
  const float* bias;
  int64_t n;
  float* y;
};

void csr_linear_ref(const Csr& p, int64_t r_begin, int64_t r_end);
void csr_linear_avx2(const Csr& p, int64_t r_begin, int64_t r_end);
void nm_linear_ref(const Nm& p, int64_t r_begin, int64_t r_end);
void nm_linear_avx2(const Nm& p, int64_t r_begin, int64_t r_end);
}  // namespace kernels
}  // namespace wattwise::prune
