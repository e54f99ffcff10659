using System.CommandLine;

namespace Vae.Cli;

/// <summary><c>vae export --checkpoint DIR --format onnx|safetensors [--part encoder|decoder] [--out FILE]</c>: a
/// model's network as an ONNX file for ONNX Runtime, or the model as a safetensors file for PyTorch.</summary>
static class ExportVerb
{
    static readonly Option<string> Format = Opt.Choice("--format", "ONNX (one network, for ONNX Runtime) or safetensors (the whole model, for PyTorch)", "onnx", "onnx", "safetensors");
    static readonly Option<string> Part = Opt.Choice("--part", "onnx: the network to export", "encoder", "encoder", "decoder");
    static readonly Option<string> Out = Opt.Text("--out", "the file (default: encoder.onnx, decoder.onnx or model.safetensors beside the checkpoint)", "FILE");

    /// <summary><c>vae export</c>.</summary>
    public static Command Command(TextWriter stdout)
    {
        var command = new Command("export", "Write a model for other tools: a network as ONNX, or the model as safetensors") { Common.Checkpoint, Format, Part, Out };
        command.SetAction(p => Run(new Arguments(p), stdout));
        return command;
    }

    static int Run(Arguments a, TextWriter stdout)
    {
        string path = Trainer.CheckpointPath(a.Get(Common.Checkpoint));
        if (!File.Exists(path)) throw new UsageException($"--checkpoint: {path}: no such file");
        if (a.Get(Format) == "safetensors")
        {
            if (a.Has(Part)) throw new UsageException("export: --part applies to --format onnx; a safetensors file holds the whole model");
            string file = a.Get(Out) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "model.safetensors");
            if (!file.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out: {file}: expected a name ending in .safetensors");
            // Where the model came from travels with it: the run's data set (so that vae evaluate finds it), algorithm,
            // settings and progress, as the checkpoint records them.
            var provenance = VariationalAutoEncoder.ReadSettings(path)
                .Where(kv => kv.Key is not "kind" && !kv.Key.StartsWith("model.", StringComparison.Ordinal) && !kv.Key.StartsWith("vae.", StringComparison.Ordinal)
                             && !kv.Key.StartsWith("input.", StringComparison.Ordinal)) // the model's own: it saves its standardisation itself
                .ToDictionary(kv => kv.Key, kv => kv.Value);
            using (var loaded = VariationalAutoEncoder.Load(path)) loaded.Save(file, provenance);
            stdout.WriteLine($"wrote {file}: the model's parameters (names and [out, in] layout as PyTorch's nn.Linear), its settings and where it came from ({provenance.Count} fields of the checkpoint) in safetensors");
            return VaeCommand.Ok;
        }
        var part = a.Get(Part) == "encoder" ? OnnxPart.Encoder : OnnxPart.Decoder;
        string output = a.Get(Out) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, part == OnnxPart.Encoder ? "encoder.onnx" : "decoder.onnx");
        using var model = VariationalAutoEncoder.Load(path);
        model.ExportOnnx(output, part);
        var o = model.Options;
        stdout.WriteLine(part == OnnxPart.Encoder
            ? $"wrote {output}: the encoder q(z|x), input x [batch, {o.InputDimension}], outputs mean and log_variance [batch, {o.LatentDimensions}] (float32)"
            : $"wrote {output}: the decoder p(x|z), input z [batch, {o.LatentDimensions}], output mean [batch, {o.InputDimension}]{(o.Likelihood == DecoderLikelihood.Bernoulli ? "" : " and log_variance")} (float32)");
        return VaeCommand.Ok;
    }
}
