using TorchSharp;
using Vae.Core;
using Vae.Data;
using static TorchSharp.torch;

namespace Vae;

/// <summary>The recognition model's Gaussian q(z|x) for a batch: means and log-variances, one row per datapoint.</summary>
/// <param name="Mean">Means, datapoints x latent dimensions.</param>
/// <param name="LogVariance">Log-variances, datapoints x latent dimensions.</param>
public sealed record LatentCode(float[,] Mean, float[,] LogVariance);

/// <summary>Burda et al.'s (2015) activity of each latent dimension over a data set: the variance across datapoints of
/// the encoder's mean. A dimension whose activity exceeds <see cref="Threshold"/> is an active unit.</summary>
/// <param name="Activity">The variance of E_q[z_u | x] over the datapoints, per latent dimension.</param>
/// <param name="Threshold">Burda et al.'s 10^-2 unless another was asked for.</param>
public sealed record LatentActivity(double[] Activity, double Threshold)
{
    /// <summary>The latent dimensions whose activity exceeds the threshold.</summary>
    public int ActiveUnits => Activity.Count(a => a > Threshold);
}

/// <summary>A variational auto-encoder (Kingma and Welling): a Gaussian MLP encoder q(z|x), an MLP decoder
/// p(x|z) and the prior p(z) = N(0, I). Create one with <see cref="Create"/>, train it with
/// <see cref="AevbTrainer"/>, save and load it as a checkpoint file. Its parameters are native tensors: dispose a
/// model you created or loaded when you are done with it.</summary>
public sealed class VariationalAutoEncoder : IDisposable
{
    readonly VaeModel _core;
    readonly bool _ownsTensors;
    bool _disposed;

    internal VariationalAutoEncoder(VaeModel core, bool ownsTensors = true, InputStandardization? standardization = null)
    {
        if (standardization is not null && standardization.Dimension != core.Config.InputDim)
            throw new ArgumentException($"standardization: {standardization.Dimension} features for a model of {core.Config.InputDim} inputs", nameof(standardization));
        (_core, _ownsTensors, Standardization) = (core, ownsTensors, standardization);
    }

    /// <summary>The per-feature standardisation of the inputs the model was trained with
    /// (<see cref="TrainingOptions.StandardizeInputs"/>), or null. Every method maps inputs and outputs through it, so
    /// values are in the data's own units and densities include its change of variables.</summary>
    public InputStandardization? Standardization { get; }

    /// <summary>What log p(x) loses against the standardised space's density: Σ log Scale, or 0.</summary>
    internal double LogScaleSum => Standardization?.LogScaleSum ?? 0;

    /// <summary>Data in the units of the model's own input space (standardised where the model is).</summary>
    Tensor Standardized(Tensor x) => Standardization?.Standardize(x) ?? x;

    /// <summary>Values of the model's input space in the data's units.</summary>
    Tensor InDataUnits(Tensor x) => Standardization?.Unstandardize(x) ?? x;

    internal VaeModel Core
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _core;
        }
    }

    /// <summary>Frees the parameters' native memory; the model cannot be used afterwards. A trainer's
    /// <see cref="Trainer.Model"/> is the trainer's: disposing it frees nothing (dispose the trainer).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsTensors) VaeModelModule.dispose(_core); // the views and the parameter vector they share
    }

    /// <summary>The model's architecture.</summary>
    public VaeModelOptions Options => VaeModelOptions.FromCore(Core.Config);

    /// <summary>A new model with every parameter drawn from N(0, 0.01²) (the options' standard deviation) using <paramref name="seed"/>.</summary>
    public static VariationalAutoEncoder Create(VaeModelOptions? options = null, long seed = 0)
    {
        var config = (options ?? new VaeModelOptions()).ToCore();
        return new(Vae.Core.VaeModelModule.create(config, Torch.generator(seed)));
    }

    /// <summary>Loads a model from a model file or a training checkpoint; a bad or mismatched file raises a
    /// <see cref="CheckpointException"/> naming what is wrong.</summary>
    public static VariationalAutoEncoder Load(string path)
    {
        var contents = Checkpoint.load(path);
        try
        {
            var standardization = InputStandardization.FromFields(path, contents.Fields.ToDictionary(kv => kv.Key, kv => kv.Value));
            return new(ModelCheckpoint.read(path, contents), standardization: standardization);
        }
        finally { Checkpoint.dispose(contents); }
    }

    /// <summary>The text settings a model file or training checkpoint records (model.*, the run's settings and
    /// progress, the data set's fields), read from a safetensors file's header alone (its header checked as
    /// <see cref="Load"/> checks it; the tensors are not read).</summary>
    public static IReadOnlyDictionary<string, string> ReadSettings(string path) =>
        Checkpoint.readFields(path).ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>Saves the model (configuration and parameters) atomically to <paramref name="path"/>: as safetensors
    /// (readable by PyTorch; settings in its metadata, a SHA-256 of the data), or in the project's original format when
    /// the name ends in .vae. <see cref="Load"/> reads both.</summary>
    public void Save(string path) => Save(path, new Dictionary<string, string>());

    /// <summary>As <see cref="Save(string)"/>, with <paramref name="fields"/> beside the model's settings in the file's
    /// metadata: where the model came from (a training run's data set, algorithm, seed and progress, as
    /// <c>vae export</c> copies them), read back by <see cref="ReadSettings"/>. A field may not replace one of the
    /// model's own (<c>kind</c>, <c>model.*</c>, <c>vae.*</c>).</summary>
    public void Save(string path, IReadOnlyDictionary<string, string> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var contents = ModelCheckpoint.write(Core);
        var all = contents.Fields;
        foreach (var (key, value) in Standardization?.Fields ?? []) all = all.Add(key, value);
        foreach (var (key, value) in fields)
        {
            if (all.ContainsKey(key) || key.StartsWith("vae.", StringComparison.Ordinal) || key.StartsWith("input.", StringComparison.Ordinal))
                throw new ArgumentException($"fields: '{key}' is one of the model file's own fields", nameof(fields));
            all = all.Add(key, value);
        }
        Checkpoint.save(path, new CheckpointContents(all, contents.Tensors));
    }

    /// <summary>Writes the encoder or the decoder as an ONNX model (float32) atomically to <paramref name="path"/>, for
    /// ONNX Runtime: see <see cref="OnnxPart"/> for its inputs and outputs.</summary>
    public void ExportOnnx(string path, OnnxPart part) => Vae.Core.Files.writeAtomically(path, OnnxExport.ToBytes(Core, part, Standardization));

    /// <summary>Writes the model's latent space as one self-contained HTML page (atomically): sliders over z with the
    /// decoded image, Appendix A's manifold for J = 2, a drawing encoded and reconstructed, and the learning curves and
    /// settings of <paramref name="options"/>. The weights are embedded and evaluated in the page; it needs no server or
    /// network.</summary>
    public void ExportLatentSpacePage(string path, LatentSpacePageOptions? options = null) =>
        Vae.Core.Files.writeAtomically(path, System.Text.Encoding.UTF8.GetBytes(LatentSpacePage.ToHtml(Core, Standardization, options ?? new())));

    Tensor Input(float[,] x, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (x.GetLength(1) != Core.Config.InputDim)
            throw new ArgumentException($"{name}: expected rows of {Core.Config.InputDim} values, got {x.GetLength(1)}", name);
        return torch.tensor(x).to_type(Core.Config.DType);
    }

    Tensor Latent(float[,] z, string name)
    {
        ArgumentNullException.ThrowIfNull(z, name);
        if (z.GetLength(1) != Core.Config.LatentDim)
            throw new ArgumentException($"{name}: expected rows of {Core.Config.LatentDim} latent values, got {z.GetLength(1)}", name);
        return torch.tensor(z).to_type(Core.Config.DType);
    }

    static float[,] ToArray(Tensor t)
    {
        using var f = t.detach().to_type(float32).contiguous();
        var result = new float[f.shape[0], f.shape[1]];
        f.data<float>().CopyTo(System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref result[0, 0], result.Length));
        return result;
    }

    /// <summary>q(z|x) for each row of <paramref name="x"/> (datapoints x input dimension).</summary>
    public LatentCode Encode(float[,] x)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var q = Vae.Core.VaeModelModule.encode(Core, Standardized(Input(x, nameof(x))));
        return new LatentCode(ToArray(q.Mean), ToArray(q.LogVar));
    }

    /// <summary>q(z|x) as tensors (mean, log-variance) for a tensor of datapoints x input dimension.</summary>
    public (Tensor Mean, Tensor LogVariance) Encode(Tensor x)
    {
        var q = Vae.Core.VaeModelModule.encode(Core, Standardized(x.to_type(Core.Config.DType)));
        return (q.Mean, q.LogVar);
    }

    /// <summary>The decoder's mean E[x|z] for each row of <paramref name="z"/> (Bernoulli probabilities or Gaussian means).</summary>
    public float[,] Decode(float[,] z)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ToArray(InDataUnits(Vae.Core.VaeModelModule.decodeMean(Core, Latent(z, nameof(z)))));
    }

    /// <summary>The decoder's mean E[x|z] for a tensor of latent points.</summary>
    public Tensor Decode(Tensor z) => InDataUnits(Vae.Core.VaeModelModule.decodeMean(Core, z.to_type(Core.Config.DType)));

    /// <summary>The encoder as a TorchSharp module over this model's own parameters (no copy): compose it, fine-tune
    /// it with a loss of your own, or save its <c>state_dict</c>; its optimiser steps change this model.</summary>
    public EncoderModule AsEncoderModule() => new(Core);

    /// <summary>The decoder as a TorchSharp module over this model's own parameters (no copy); see
    /// <see cref="AsEncoderModule"/>.</summary>
    public DecoderModule AsDecoderModule() => new(Core);

    /// <summary>Decoder means of <paramref name="count"/> draws z ~ N(0, I) from the prior.</summary>
    public float[,] Sample(int count, long seed = 0)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "expected a non-negative count");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var z = torch.randn([count, Core.Config.LatentDim], dtype: Core.Config.DType, generator: Torch.generator(seed));
        return ToArray(InDataUnits(Vae.Core.VaeModelModule.decodeMean(Core, z)));
    }

    /// <summary>Appendix A's learned manifold of a model with two latent dimensions: decoder means at an
    /// <paramref name="n"/> x <paramref name="n"/> grid of latent points placed at the inverse Gaussian CDF of an
    /// evenly spaced grid on the unit square (row by row, the second coordinate decreasing downwards).</summary>
    public float[,] Manifold(int n = 20)
    {
        if (Core.Config.LatentDim != 2)
            throw new InvalidOperationException($"a manifold is drawn for two latent dimensions; this model has {Core.Config.LatentDim}");
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "expected a grid of at least 1 x 1");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        return ToArray(InDataUnits(Vae.Core.VaeModelModule.decodeMean(Core, Vae.Core.Plots.Mosaic.manifoldGrid(n, Core.Config.DType))));
    }

    /// <summary>Reconstructions: the decoder's mean at the encoder's mean for each row of <paramref name="x"/>.</summary>
    public float[,] Reconstruct(float[,] x)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var q = Vae.Core.VaeModelModule.encode(Core, Standardized(Input(x, nameof(x))));
        return ToArray(InDataUnits(Vae.Core.VaeModelModule.decodeMean(Core, q.Mean)));
    }

    /// <summary>The data as the networks see them: in the model's dtype, standardised where the model is.</summary>
    internal Tensor Data(ImageData data)
    {
        ArgumentNullException.ThrowIfNull(data);
        // An estimate over no datapoints would be 0 / 0: refused rather than returned as NaN.
        if (data.Count == 0) throw new ArgumentException("data: no images; expected at least one", nameof(data));
        if (data.Dimension != Core.Config.InputDim)
            throw new ArgumentException($"data: expected images of {Core.Config.InputDim} values, got {data.Dimension}", nameof(data));
        var x = data.ToTensor(Core.Config.DType);
        if (Standardization is null) return x;
        using (x) return Standardization.Standardize(x);
    }

    /// <summary>The average lower bound per datapoint (nats) over <paramref name="data"/>, one noise sample per datapoint.</summary>
    public double LowerBound(ImageData data, SgvbEstimator estimator = SgvbEstimator.B, long seed = 0)
    {
        using var scope = torch.NewDisposeScope();
        return Evaluation.bound(estimator == SgvbEstimator.A ? EstimatorKind.A : EstimatorKind.B, Core, Data(data), 1000, Torch.generator(seed)) - LogScaleSum;
    }

    /// <summary>The activity of each latent dimension over <paramref name="data"/> and the active units among them (Burda et
    /// al. 2015, section 5.2: the variance over datapoints of E_q[z_u | x], active above <paramref name="threshold"/>).</summary>
    public LatentActivity LatentActivity(ImageData data, double threshold = 0.01)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Count < 1) throw new ArgumentException("data: expected at least one datapoint", nameof(data));
        if (!(threshold >= 0) || !double.IsFinite(threshold)) throw new ArgumentOutOfRangeException(nameof(threshold), threshold, "threshold: expected a number of at least 0");
        using var scope = torch.NewDisposeScope();
        return new LatentActivity(Evaluation.latentActivity(Core, Data(data), 1000).data<double>().ToArray(), threshold);
    }

    /// <summary>The average K-sample importance-weighted estimate of log p(x) per datapoint (nats; Burda et al.). With
    /// <paramref name="mixedPrecision"/> the decoder's output multiply takes bfloat16 operands (Bernoulli decoders only;
    /// about twice as fast on CPUs with bfloat16 arithmetic; within hundredths of a nat of float32 on MNIST).</summary>
    public double LogLikelihood(ImageData data, int k = 5000, long seed = 0, bool mixedPrecision = false)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "K: expected at least 1");
        using var scope = torch.NewDisposeScope();
        return Evaluation.importanceWeightedIn(mixedPrecision, Core, Data(data), k, 100, Torch.generator(seed)) - LogScaleSum;
    }

    /// <summary>Per-datapoint scores of the rows of <paramref name="x"/> (datapoints x input dimension): each row's
    /// importance-weighted estimate of log p(x) with its standard error, and its lower bound with its standard error
    /// (<see cref="DatapointScore"/>), for anomaly and out-of-distribution detection. Rows are scored in batches of
    /// <see cref="ScoreOptions.BatchSize"/> with the draws <see cref="LogLikelihood"/> makes for the same seed and K, so
    /// the scores' mean is its value; memory stays bounded for any row count.</summary>
    /// <exception cref="ArgumentException">A value is NaN or infinite, or outside [0, 1] for a Bernoulli decoder (the
    /// message names the row and column), or the rows have the wrong length.</exception>
    public DatapointScore[] Score(float[,] x, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        using var scope = torch.NewDisposeScope();
        return Score(Input(x, nameof(x)), options, cancellationToken);
    }

    /// <summary><see cref="Score(float[,], ScoreOptions?, CancellationToken)"/> for image data.</summary>
    public DatapointScore[] Score(ImageData data, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var scope = torch.NewDisposeScope();
        return Score(data.ToTensor(), options, cancellationToken);
    }

    /// <summary><see cref="Score(float[,], ScoreOptions?, CancellationToken)"/> for a tensor of datapoints x input
    /// dimension (any floating dtype; converted to the model's).</summary>
    public DatapointScore[] Score(Tensor x, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(x);
        var o = options ?? new ScoreOptions();
        o.Validate();
        if (x.dim() != 2 || x.shape[1] != Core.Config.InputDim)
            throw new ArgumentException($"x: expected a tensor of rows of {Core.Config.InputDim} values, got shape [{string.Join(", ", x.shape)}]", nameof(x));
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var raw = x.to_type(Core.Config.DType);
        RequireScorable(raw);
        var data = Standardized(raw);
        long n = data.shape[0];
        var scores = new DatapointScore[n];
        using var g = Torch.generator(o.Seed);
        for (long start = 0; start < n; start += o.BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var batchScope = torch.NewDisposeScope();
            var rows = data.narrow(0, start, Math.Min(o.BatchSize, n - start));
            var s = Vae.Core.ImportanceWeighted.scores(Core, rows, o.ImportanceSamples, Evaluation.chunkFor(o.ImportanceSamples, rows), g);
            double[] Values(Tensor t) => t.to_type(float64).data<double>().ToArray();
            double[] ll = Values(s.LogLikelihood), se = Values(s.StandardError), elbo = Values(s.Elbo), elboSe = Values(s.ElboStandardError);
            for (int i = 0; i < ll.Length; i++) scores[start + i] = new DatapointScore(ll[i] - LogScaleSum, se[i], elbo[i] - LogScaleSum, elboSe[i]);
        }
        return scores;
    }

    /// <summary>Refuses non-finite values, and values outside [0, 1] under a Bernoulli decoder, naming the first one.</summary>
    void RequireScorable(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        void Refuse(Tensor bad, string expected)
        {
            var at = bad.nonzero();
            if (at.shape[0] == 0) return;
            long row = at[0, 0].item<long>(), column = at[0, 1].item<long>();
            throw new ArgumentException(
                $"x: row {row}, column {column} is {x[row, column].to_type(float64).item<double>().ToString(System.Globalization.CultureInfo.InvariantCulture)}; expected {expected}", "x");
        }
        Refuse(x.isfinite().logical_not(), "a finite value");
        if (Core.Config.Likelihood.IsBernoulli) Refuse(x.lt(0).logical_or(x.gt(1)), "a value in [0, 1] for the Bernoulli decoder");
    }

    /// <summary>The exact average log p(x) per datapoint (nats) for a model with the
    /// <see cref="DecoderLikelihood.LinearGaussian"/> decoder, whose marginal is N(b, W Wᵀ + diag σ²); other decoders
    /// have no closed form and throw <see cref="InvalidOperationException"/>.</summary>
    public double ExactLogLikelihood(ImageData data)
    {
        using var scope = torch.NewDisposeScope();
        return VaeModelModule.exactLogLikelihood(Core, Data(data)).mean().ToDouble() - LogScaleSum;
    }
}
