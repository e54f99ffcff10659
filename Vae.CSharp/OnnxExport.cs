using Google.Protobuf;
using TorchSharp;
using Vae.Core;
using static TorchSharp.torch;

namespace Vae;

/// <summary>Which network of a model an ONNX file holds.</summary>
public enum OnnxPart
{
    /// <summary>The recognition model q(z|x): input <c>x</c> [batch, D]; outputs <c>mean</c> and <c>log_variance</c> [batch, J].</summary>
    Encoder,
    /// <summary>The generative model p(x|z): input <c>z</c> [batch, J]; output <c>mean</c> [batch, D] (Bernoulli
    /// probabilities, or the Gaussian's mean) and, for Gaussian decoders, <c>log_variance</c>.</summary>
    Decoder,
}

/// <summary>Writes a model's encoder or decoder as an ONNX model (IR version 8, opset 17: Gemm, Tanh, Sigmoid; Sub, Div,
/// Mul and Add for a model with an <see cref="Vae.Data.InputStandardization"/>, whose inputs and outputs are then in
/// the data's own units), float32,
/// with the parameters as initialisers under their checkpoint names, so that a service can run it with ONNX Runtime
/// and without libtorch. The file is a ModelProto in protobuf encoding, written field by field; equal models give
/// byte-identical files.</summary>
static class OnnxExport
{
    const long IrVersion = 8, Opset = 17;
    const int Float = 1; // TensorProto.DataType.FLOAT

    public static byte[] ToBytes(VaeModel model, OnnxPart part, Vae.Data.InputStandardization? standardization = null)
    {
        var c = model.Config;
        using var constants = torch.NewDisposeScope();
        var parameters = VaeModelModule.parameters(model).ToDictionary(p => p.Name, p => p.Tensor);
        if (standardization is not null)
        {
            parameters["input.mean"] = torch.tensor(standardization.Mean.ToArray());
            parameters["input.scale"] = torch.tensor(standardization.Scale.ToArray());
            parameters["input.log_scale_twice"] = torch.tensor(standardization.Scale.Select(v => 2 * MathF.Log(v)).ToArray());
        }
        var graph = new Graph();
        // y = x Wᵀ + b, as nn.Linear, with the [out, in] weight as stored.
        string Linear(string input, string prefix, string output) =>
            graph.Node("Gemm", [input, graph.Initializer(prefix + ".weight", parameters), graph.Initializer(prefix + ".bias", parameters)], output, transB: 1);
        // The MLP's tanh layers in order (Appendix C has one; deeper networks more).
        string Mlp(string input, string prefix) => Enumerable.Range(1, c.HiddenLayers).Aggregate(input, (h, i) =>
        {
            string layer = VaeModelModule.hiddenName(prefix, i);
            return graph.Node("Tanh", [Linear(h, layer, layer + ".linear")], layer + ".tanh");
        });
        // With a standardisation: x' = (x - mean) / scale into the encoder; the decoder's mean * scale + mean and its
        // log-variance + 2 log scale out, under the outputs' names.
        string In(string x) => standardization is null ? x
            : graph.Node("Div", [graph.Node("Sub", [x, graph.Initializer("input.mean", parameters)], "x.centred"), graph.Initializer("input.scale", parameters)], "x.standardized");
        string OutMean(Func<string, string> mean) => standardization is null ? mean("mean")
            : graph.Node("Add", [graph.Node("Mul", [mean("mean.standardized"), graph.Initializer("input.scale", parameters)], "mean.scaled"), graph.Initializer("input.mean", parameters)], "mean");
        string OutLogVariance(Func<string, string> logVariance) => standardization is null ? logVariance("log_variance")
            : graph.Node("Add", [logVariance("log_variance.standardized"), graph.Initializer("input.log_scale_twice", parameters)], "log_variance");

        if (part == OnnxPart.Encoder)
        {
            graph.Input("x", c.InputDim);
            string h = Mlp(In("x"), "encoder");
            graph.Output(Linear(h, "encoder.mean", "mean"), c.LatentDim);
            graph.Output(Linear(h, "encoder.logvar", "log_variance"), c.LatentDim);
        }
        else
        {
            graph.Input("z", c.LatentDim);
            switch (c.Likelihood.Tag)
            {
                case Likelihood.Tags.Bernoulli:
                    graph.Output(OutMean(name => graph.Node("Sigmoid", [Linear(Mlp("z", "decoder"), "decoder.logits", "logits")], name)), c.InputDim);
                    break;
                case Likelihood.Tags.Gaussian or Likelihood.Tags.GaussianSigmoidMean:
                    string h = Mlp("z", "decoder");
                    graph.Output(OutMean(name => c.Likelihood.IsGaussianSigmoidMean ? graph.Node("Sigmoid", [Linear(h, "decoder.mean", "mean.linear")], name) : Linear(h, "decoder.mean", name)), c.InputDim);
                    graph.Output(OutLogVariance(name => Linear(h, "decoder.logvar", name)), c.InputDim);
                    break;
                default: // linear-Gaussian: one log-variance per input dimension, the same for every row
                    graph.Output(OutMean(name => Linear("z", "decoder.mean", name)), c.InputDim);
                    graph.Output(OutLogVariance(name => graph.Node("Identity", [graph.Initializer("decoder.logvar", parameters)], name)), null, c.InputDim);
                    break;
            }
        }
        return Message(w =>
        {
            w.WriteTag(1, WireFormat.WireType.Varint); w.WriteInt64(IrVersion);
            w.WriteTag(2, WireFormat.WireType.LengthDelimited); w.WriteString("Vae");
            w.WriteTag(3, WireFormat.WireType.LengthDelimited); w.WriteString(typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "");
            w.WriteTag(6, WireFormat.WireType.LengthDelimited);
            w.WriteString($"{(part == OnnxPart.Encoder ? "encoder q(z|x)" : "decoder p(x|z)")} of a variational auto-encoder: D = {c.InputDim}, {(c.HiddenLayers == 1 ? "" : $"{c.HiddenLayers} tanh layers of ")}{c.HiddenUnits} hidden units, J = {c.LatentDim}");
            Field(w, 7, graph.ToBytes(part == OnnxPart.Encoder ? "vae_encoder" : "vae_decoder"));
            Field(w, 8, Message(o => { o.WriteTag(2, WireFormat.WireType.Varint); o.WriteInt64(Opset); })); // the default domain
        });
    }

    /// <summary>A message's bytes, written by <paramref name="write"/>.</summary>
    static byte[] Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new CodedOutputStream(buffer, leaveOpen: true)) { write(w); w.Flush(); }
        return buffer.ToArray();
    }

    /// <summary>An embedded message (or bytes) as field <paramref name="number"/>.</summary>
    static void Field(CodedOutputStream w, int number, byte[] bytes)
    {
        w.WriteTag(number, WireFormat.WireType.LengthDelimited);
        w.WriteBytes(ByteString.CopyFrom(bytes));
    }

    /// <summary>A GraphProto being built: nodes in order, initialisers, inputs and outputs.</summary>
    sealed class Graph
    {
        readonly List<byte[]> _nodes = [], _initializers = [], _inputs = [], _outputs = [];
        readonly HashSet<string> _initialized = [];

        public string Node(string op, string[] inputs, string output, long? transB = null)
        {
            _nodes.Add(Message(w =>
            {
                foreach (var i in inputs) { w.WriteTag(1, WireFormat.WireType.LengthDelimited); w.WriteString(i); }
                w.WriteTag(2, WireFormat.WireType.LengthDelimited); w.WriteString(output);
                w.WriteTag(3, WireFormat.WireType.LengthDelimited); w.WriteString(output);
                w.WriteTag(4, WireFormat.WireType.LengthDelimited); w.WriteString(op);
                if (transB is long t)
                    Field(w, 5, Message(a =>
                    {
                        a.WriteTag(1, WireFormat.WireType.LengthDelimited); a.WriteString("transB");
                        a.WriteTag(3, WireFormat.WireType.Varint); a.WriteInt64(t);
                        a.WriteTag(20, WireFormat.WireType.Varint); a.WriteEnum(2); // AttributeType.INT
                    }));
            }));
            return output;
        }

        /// <summary>The parameter as a float32 initialiser (once), little-endian raw data; returns its name.</summary>
        public string Initializer(string name, IReadOnlyDictionary<string, Tensor> parameters)
        {
            if (!_initialized.Add(name)) return name;
            using var scope = torch.NewDisposeScope();
            var t = parameters[name].detach().to_type(float32).contiguous();
            var raw = new byte[t.NumberOfElements * 4];
            t.bytes.CopyTo(raw);
            _initializers.Add(Message(w =>
            {
                foreach (var d in t.shape) { w.WriteTag(1, WireFormat.WireType.Varint); w.WriteInt64(d); }
                w.WriteTag(2, WireFormat.WireType.Varint); w.WriteInt32(Float);
                w.WriteTag(8, WireFormat.WireType.LengthDelimited); w.WriteString(name);
                w.WriteTag(9, WireFormat.WireType.LengthDelimited); w.WriteBytes(ByteString.CopyFrom(raw));
            }));
            return name;
        }

        public void Input(string name, int columns) => _inputs.Add(ValueInfo(name, "batch", columns));

        public void Output(string name, int columns) => _outputs.Add(ValueInfo(name, "batch", columns));

        /// <summary>An output without a batch dimension (<paramref name="batch"/> null): shape [columns].</summary>
        public void Output(string name, string? batch, int columns) => _outputs.Add(ValueInfo(name, batch, columns));

        static byte[] ValueInfo(string name, string? batch, int columns) => Message(w =>
        {
            w.WriteTag(1, WireFormat.WireType.LengthDelimited); w.WriteString(name);
            var shape = Message(s =>
            {
                if (batch is not null)
                    Field(s, 1, Message(d => { d.WriteTag(2, WireFormat.WireType.LengthDelimited); d.WriteString(batch); }));
                Field(s, 1, Message(d => { d.WriteTag(1, WireFormat.WireType.Varint); d.WriteInt64(columns); }));
            });
            var tensorType = Message(t => { t.WriteTag(1, WireFormat.WireType.Varint); t.WriteInt32(Float); Field(t, 2, shape); });
            Field(w, 2, Message(t => Field(t, 1, tensorType)));
        });

        public byte[] ToBytes(string name) => Message(w =>
        {
            foreach (var n in _nodes) Field(w, 1, n);
            w.WriteTag(2, WireFormat.WireType.LengthDelimited); w.WriteString(name);
            foreach (var i in _initializers) Field(w, 5, i);
            foreach (var i in _inputs) Field(w, 11, i);
            foreach (var o in _outputs) Field(w, 12, o);
        });
    }
}
