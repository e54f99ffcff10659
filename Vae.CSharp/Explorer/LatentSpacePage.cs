using System.Text;
using System.Text.Json;
using Vae.Core;
using Vae.Data;
using static TorchSharp.torch;

namespace Vae;

/// <summary>What <see cref="VariationalAutoEncoder.ExportLatentSpacePage"/> puts in the page besides the networks.</summary>
public sealed record LatentSpacePageOptions
{
    /// <summary>The heading (default: "Vae model").</summary>
    public string Title { get; init; } = "Vae model";
    /// <summary>Image height in values (default: <see cref="ImageMosaic.Shape"/>'s rule: 28, as MNIST and Frey Face).</summary>
    public int? ImageHeight { get; init; }
    /// <summary>Image width in values (default: the model's values per datapoint / height).</summary>
    public int? ImageWidth { get; init; }
    /// <summary>Sliders for the first this many latent dimensions; the rest stay at 0 (default 20).</summary>
    public int MaxSliders { get; init; } = 20;
    /// <summary>Images per side of the manifold of a J = 2 model (default 20, as Figure 4).</summary>
    public int ManifoldGrid { get; init; } = 20;
    /// <summary>The run's evaluations (e.g. its metrics.csv), drawn as learning curves; null or empty: none.</summary>
    public IReadOnlyList<EvaluationResult>? LearningCurve { get; init; }
    /// <summary>Settings shown as a table (e.g. <see cref="VariationalAutoEncoder.ReadSettings"/>); null: none.</summary>
    public IReadOnlyDictionary<string, string>? Settings { get; init; }
}

/// <summary>A model's latent space as one self-contained HTML page: the encoder's and decoder's weights embedded
/// (float32, base64) and Appendix C's networks evaluated in the page's script, so it opens from the file system with no
/// server and no network. Sliders move z and show E[x|z]; a J = 2 model gets Appendix A's manifold as a zoomable
/// grid; models of grey-level images get a canvas whose drawing is encoded and reconstructed; the run's learning
/// curves when given. The page's <c>window.vae</c> exposes <c>encode</c>, <c>decode</c> and its state for scripts.</summary>
static class LatentSpacePage
{
    const string Placeholder = "__VAE_MODEL__";

    public static string ToHtml(VaeModel model, InputStandardization? standardization, LatentSpacePageOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var c = model.Config;
        var (height, width) = ImageMosaic.Shape(c.InputDim, options.ImageHeight, options.ImageWidth);
        if (options.MaxSliders < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxSliders, "MaxSliders: expected at least 1");
        if (options.ManifoldGrid is < 1 or > 100) throw new ArgumentOutOfRangeException(nameof(options), options.ManifoldGrid, "ManifoldGrid: expected 1 to 100");
        string decoder = c.Likelihood.Tag switch
        {
            Likelihood.Tags.Bernoulli => "bernoulli",
            Likelihood.Tags.Gaussian => "gaussian",
            Likelihood.Tags.GaussianSigmoidMean => "gaussian-sigmoid-mean",
            _ => "linear-gaussian",
        };
        var parameters = new Dictionary<string, object>();
        foreach (var p in VaeModelModule.parameters(model))
            parameters[p.Name] = new { shape = p.Tensor.shape, data = Base64Of(p.Tensor) };
        var curve = options.LearningCurve is { Count: > 0 } evaluations
            ? new
            {
                samples = evaluations.Select(e => e.SamplesSeen).ToArray(),
                train = evaluations.Select(e => Finite(e.TrainBound)).ToArray(),
                test = evaluations.Select(e => Finite(e.TestBound)).ToArray(),
            }
            : null;
        var data = new
        {
            title = options.Title,
            latent = c.LatentDim,
            input = c.InputDim,
            hidden = c.HiddenUnits,
            hiddenLayers = c.HiddenLayers,
            height,
            width,
            decoder,
            // A drawing is a grey-level image only where the decoder's values are grey levels and nothing is standardised.
            drawable = standardization is null && c.Likelihood.Tag is Likelihood.Tags.Bernoulli or Likelihood.Tags.GaussianSigmoidMean,
            sliders = options.MaxSliders,
            grid = options.ManifoldGrid,
            parameters,
            standardization = standardization is null ? null
                : new { mean = Base64(standardization.Mean), scale = Base64(standardization.Scale) },
            curve,
            settings = (options.Settings ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => new[] { kv.Key, kv.Value }).ToArray(),
        };
        // The default encoder escapes <, > and &, so the JSON cannot close its script element.
        return Template().Replace(Placeholder, JsonSerializer.Serialize(data), StringComparison.Ordinal);
    }

    /// <summary>NaN (no evaluation) as null, which JSON can carry.</summary>
    static double? Finite(double v) => double.IsFinite(v) ? v : null;

    static string Base64Of(TorchSharp.torch.Tensor t)
    {
        using var f = t.detach().to_type(float32).contiguous().cpu();
        return Base64((IReadOnlyList<float>)f.data<float>().ToArray());
    }

    static string Base64(IReadOnlyList<float> values)
    {
        var bytes = new byte[values.Count * sizeof(float)];
        for (int i = 0; i < values.Count; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        return Convert.ToBase64String(bytes);
    }

    static string Template()
    {
        using var stream = typeof(LatentSpacePage).Assembly.GetManifestResourceStream("Vae.Explorer.latent-space.html")
            ?? throw new InvalidOperationException("the latent-space page's template is missing from the Vae assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
