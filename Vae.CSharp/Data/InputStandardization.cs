using System.Globalization;
using TorchSharp;

namespace Vae.Data;

/// <summary>Per-feature standardisation of a model's inputs, x' = (x − Mean) / Scale, fitted on a training set: the
/// model is a VAE of x', and every method of <see cref="VariationalAutoEncoder"/> maps its inputs and outputs through
/// it, so that callers see x's units. Densities carry the change of variables: log p(x) = log p'(x') − Σ log Scale.
/// Saved with the model (fields <c>input.mean</c> and <c>input.scale</c>), applied by its ONNX export.</summary>
public sealed class InputStandardization
{
    internal const string MeanField = "input.mean", ScaleField = "input.scale";
    readonly float[] _mean, _scale;

    /// <summary>A standardisation with the given per-feature means and scales (positive and finite).</summary>
    public InputStandardization(IReadOnlyList<float> mean, IReadOnlyList<float> scale)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(scale);
        if (mean.Count != scale.Count || mean.Count == 0) throw new ArgumentException($"mean and scale: expected one value each per feature, got {mean.Count} and {scale.Count}", nameof(scale));
        for (int d = 0; d < scale.Count; d++)
        {
            if (!float.IsFinite(mean[d])) throw new ArgumentException($"mean of feature {d} is {mean[d]}; expected a finite value", nameof(mean));
            if (!(scale[d] > 0) || !float.IsFinite(scale[d])) throw new ArgumentException($"scale of feature {d} is {scale[d]}; expected a positive finite value", nameof(scale));
        }
        (_mean, _scale) = ([.. mean], [.. scale]);
        LogScaleSum = _scale.Sum(s => Math.Log(s));
    }

    /// <summary>Each feature's mean over <paramref name="train"/> and its standard deviation (a feature that does not
    /// vary keeps scale 1), computed in float64.</summary>
    public static InputStandardization Fit(ImageData train)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException("train: no rows to fit a standardisation on", nameof(train));
        int n = train.Count, d = train.Dimension;
        var sum = new double[d];
        var squares = new double[d];
        var pixels = train.Pixels;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) sum[j] += pixels[i * d + j];
        var mean = sum.Select(s => s / n).ToArray();
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) { double e = pixels[i * d + j] - mean[j]; squares[j] += e * e; }
        return new([.. mean.Select(m => (float)m)], [.. squares.Select(s => Math.Sqrt(s / n) is var sd && sd > 0 ? (float)sd : 1f)]);
    }

    /// <summary>The per-feature means.</summary>
    public IReadOnlyList<float> Mean => _mean;
    /// <summary>The per-feature scales.</summary>
    public IReadOnlyList<float> Scale => _scale;
    /// <summary>Σ log Scale: what log p(x) loses against log p'(x') (nats).</summary>
    public double LogScaleSum { get; }

    internal int Dimension => _mean.Length;

    /// <summary>(x − Mean) / Scale over the last dimension, in x's dtype.</summary>
    internal torch.Tensor Standardize(torch.Tensor x)
    {
        using var m = torch.tensor(_mean).to_type(x.dtype);
        using var s = torch.tensor(_scale).to_type(x.dtype);
        return (x - m) / s;
    }

    /// <summary>x' Scale + Mean: a value of the standardised space in x's units.</summary>
    internal torch.Tensor Unstandardize(torch.Tensor x)
    {
        using var m = torch.tensor(_mean).to_type(x.dtype);
        using var s = torch.tensor(_scale).to_type(x.dtype);
        return x * s + m;
    }

    /// <summary>The images standardised (a copy).</summary>
    internal ImageData Standardize(ImageData x)
    {
        var values = x.Pixels.ToArray();
        for (int i = 0; i < values.Length; i++) values[i] = (values[i] - _mean[i % _mean.Length]) / _scale[i % _scale.Length];
        return new ImageData(x.Count, x.Height, x.Width, values);
    }

    /// <summary>The model file's fields that hold it.</summary>
    internal IEnumerable<KeyValuePair<string, string>> Fields =>
    [
        new(MeanField, string.Join(",", _mean.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))),
        new(ScaleField, string.Join(",", _scale.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))),
    ];

    /// <summary>The standardisation a file's fields hold, or null; a malformed one raises <see cref="CheckpointException"/>.</summary>
    internal static InputStandardization? FromFields(string file, IReadOnlyDictionary<string, string> fields)
    {
        bool hasMean = fields.TryGetValue(MeanField, out var meanText), hasScale = fields.TryGetValue(ScaleField, out var scaleText);
        if (!hasMean && !hasScale) return null;
        float[] Parse(string field, string? text) =>
            text is null ? throw new CheckpointException(file, $"field '{field}' is missing beside '{(field == MeanField ? ScaleField : MeanField)}'")
            : [.. text.Split(',').Select(v => float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) ? f
                : throw new CheckpointException(file, $"field '{field}': '{v}' is not a number"))];
        try { return new InputStandardization(Parse(MeanField, meanText), Parse(ScaleField, scaleText)); }
        catch (ArgumentException e) { throw new CheckpointException(file, $"fields '{MeanField}' and '{ScaleField}': {e.Message}"); }
    }
}
