namespace Vae.Cli;

/// <summary><c>vae export --checkpoint DIR --format onnx --part encoder|decoder [--out FILE]</c>: a model's network as an
/// ONNX file for ONNX Runtime.</summary>
static class ExportVerb
{
    public static int Run(string[] args, TextWriter stdout)
    {
        var a = new Arguments("export", args, ["checkpoint", "format", "part", "out"], []);
        a.AtMostPositional(0, "export");
        string path = a.String("checkpoint") ?? throw new UsageException("export: --checkpoint FILE|DIR is required");
        if (Directory.Exists(path)) path = Path.Combine(path, Trainer.CheckpointFileName);
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        a.Choice("format", "onnx", "onnx");
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
