namespace Vae.Cli;

/// <summary><c>vae export --checkpoint DIR --format onnx|safetensors [--part encoder|decoder] [--out FILE]</c>: a
/// model's network as an ONNX file for ONNX Runtime, or the model as a safetensors file for PyTorch.</summary>
static class ExportVerb
{
    public static int Run(string[] args, TextWriter stdout)
    {
        var a = new Arguments("export", args, ["checkpoint", "format", "part", "out"], []);
        a.AtMostPositional(0, "export");
        string path = a.String("checkpoint") ?? throw new UsageException("export: --checkpoint FILE|DIR is required");
        path = Trainer.CheckpointPath(path);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        if (a.Choice("format", "onnx", "onnx", "safetensors") == "safetensors")
        {
            if (a.Has("part")) throw new UsageException("export: --part applies to --format onnx; a safetensors file holds the whole model");
            string file = a.String("out") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "model.safetensors");
            if (!file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out: {file}: expected a name ending in .safetensors");
            VariationalAutoEncoder.Load(path).Save(file);
            stdout.WriteLine($"wrote {file}: the model's parameters (names and [out, in] layout as PyTorch's nn.Linear) and settings in safetensors");
            return VaeCommand.Ok;
        }
        var part = a.Choice("part", "encoder", "encoder", "decoder") == "encoder" ? OnnxPart.Encoder : OnnxPart.Decoder;
        string output = a.String("out") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, part == OnnxPart.Encoder ? "encoder.onnx" : "decoder.onnx");
        var model = VariationalAutoEncoder.Load(path);
        model.ExportOnnx(output, part);
        var o = model.Options;
        stdout.WriteLine(part == OnnxPart.Encoder
            ? $"wrote {output}: the encoder q(z|x), input x [batch, {o.InputDimension}], outputs mean and log_variance [batch, {o.LatentDimensions}] (float32)"
            : $"wrote {output}: the decoder p(x|z), input z [batch, {o.LatentDimensions}], output mean [batch, {o.InputDimension}]{(o.Likelihood == DecoderLikelihood.Bernoulli ? "" : " and log_variance")} (float32)");
        return VaeCommand.Ok;
    }
}
