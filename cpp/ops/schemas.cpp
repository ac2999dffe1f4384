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
}
