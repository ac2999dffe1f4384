// Every wattwise op schema, in one place. CPU kernels live beside their pillar in cpp/ops/<pillar>;
// fake (meta) kernels and autograd formulas are registered from Python.
#include <torch/library.h>

TORCH_LIBRARY(wattwise, m) {
  // quant: weight-only int8 (per output channel) and int4 (grouped), fp32 activations.
  m.def("int8_weight_only_quantize(Tensor weight) -> (Tensor qweight, Tensor scales)",
        {at::Tag::pt2_compliant_tag});
  m.def("int8_weight_only_dequantize(Tensor qweight, Tensor scales) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "int8_weight_only_linear(Tensor input, Tensor qweight, Tensor scales, Tensor? bias) -> "
      "Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "int4_weight_only_quantize(Tensor weight, int group_size) -> (Tensor qweight, Tensor "
      "scales)",
      {at::Tag::pt2_compliant_tag});
  m.def("int4_weight_only_dequantize(Tensor qweight, Tensor scales, int group_size) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "int4_weight_only_linear(Tensor input, Tensor qweight, Tensor scales, int group_size, "
      "Tensor? bias) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  // prune: magnitude selection over many tensors (threshold as |w| bit pattern + ties) and
  // sparse Linear (CSR with uint16 columns stored as int16; N:M values + uint8 indices).
  m.def("prune_kth_magnitude(Tensor[] tensors, int k) -> (int threshold_bits, int ties)");
  m.def(
      "prune_magnitude_mask(Tensor weight, int threshold_bits, int ties) -> (Tensor keep, int "
      "ties_left, int pruned)");
  m.def(
      "prune_magnitude_zero_(Tensor(a!) weight, int threshold_bits, int ties) -> (int ties_left, "
      "int pruned)");
  m.def(
      "sparse_csr_linear(Tensor input, Tensor row_ptr, Tensor col, Tensor values, int "
      "in_features, Tensor? bias) -> Tensor",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "sparse_nm_linear(Tensor input, Tensor values, Tensor idx, int n, int m, Tensor? bias) -> "
      "Tensor",
      {at::Tag::pt2_compliant_tag});
}
