using System.Text.Json;
using Vae.Data;

namespace Vae.Experiments;

/// <summary>Estimates of a finished run's model, made once when the run reaches its budget and kept in the run
/// directory's <c>end-point.json</c>: each estimator on the first <see cref="Points"/> training and test images.</summary>
public sealed record EndPointOptions
{
    /// <summary>The estimators, at most one per method. Those that need a trained encoder (the bound and the
    /// importance-weighted estimate) are skipped for Monte Carlo EM, which trains none.</summary>
    public IReadOnlyList<MarginalLikelihoodOptions> Estimators { get; init; } = [];
    /// <summary>Estimators applied to the test images only (an estimate too slow for the whole training set, such as
    /// the importance-weighted one with K = 5000 beside Figure 2's bounds); at most one per method over both lists.</summary>
    public IReadOnlyList<MarginalLikelihoodOptions> TestEstimators { get; init; } = [];
    /// <summary>The first N training and test images; 0: all of them.</summary>
    public int Points { get; init; }
    /// <summary>Also count the active latent units on the test images (Burda et al.'s measure, variance of the encoder's
    /// mean above 0.01): the fields <c>active_units</c> and <c>latent_activity</c>.</summary>
    public bool ActiveUnits { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the setting that is out of range.</summary>
    internal void Validate(string parameter)
    {
        if (Points < 0) throw new ArgumentOutOfRangeException(parameter, Points, "end-point points: expected 0 (all) or more");
        foreach (var o in Estimators.Concat(TestEstimators)) _ = new MarginalLikelihoodEstimator(o); // validates
        if (Estimators.Concat(TestEstimators).GroupBy(o => o.Method).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"end-point estimators: {EndPoint.Key(twice.Key)} twice; expected at most one per method", parameter);
    }
}

/// <summary>End-point estimates: a model's log-likelihood estimates on training and test images as one record, the
/// fields <c>vae evaluate --estimator ... --json</c> prints and <c>end-point.json</c> holds.</summary>
public static class EndPoint
{
    /// <summary>The name of a method's fields: <c>train_{key}</c> and <c>test_{key}</c>.</summary>
    public static string Key(MarginalLikelihoodMethod method) => method switch
    {
        MarginalLikelihoodMethod.Elbo => "elbo",
        MarginalLikelihoodMethod.ImportanceWeighted => "iwae",
        MarginalLikelihoodMethod.Exact => "exact",
        _ => "hmc_marginal",
    };

    /// <summary>Each estimator on <paramref name="train"/> and <paramref name="test"/>, and each of
    /// <paramref name="testEstimators"/> on <paramref name="test"/> alone: the fields <c>train_points</c>,
    /// <c>test_points</c>, and per estimator <c>train_{key}</c> (not for a test-only one), <c>test_{key}</c> and its
    /// settings (<c>k</c>; <c>posterior_samples</c>, <c>leapfrog</c>, <c>burn_in</c>, <c>start_candidates</c> when not the
    /// default); with more than one draw, also the
    /// standard errors <c>train_{key}_se</c> and <c>test_{key}_se</c> and <c>{key}_draws</c>.</summary>
    public static Dictionary<string, object> Estimate(VariationalAutoEncoder model, ImageData train, ImageData test,
                                                      IEnumerable<MarginalLikelihoodOptions> estimators, CancellationToken cancellationToken = default,
                                                      IEnumerable<MarginalLikelihoodOptions>? testEstimators = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        ArgumentNullException.ThrowIfNull(estimators);
        var fields = new Dictionary<string, object> { ["train_points"] = train.Count, ["test_points"] = test.Count };
        foreach (var (o, both) in estimators.Select(o => (o, true)).Concat((testEstimators ?? []).Select(o => (o, false))))
        {
            string key = Key(o.Method);
            if (fields.ContainsKey("test_" + key)) throw new ArgumentException($"estimators: {key} twice; expected at most one per method", nameof(estimators));
            var estimator = new MarginalLikelihoodEstimator(o);
            void Record(string set, ImageData data)
            {
                var e = estimator.EstimateWithError(model, data, cancellationToken);
                fields[$"{set}_{key}"] = e.Mean;
                if (e.Draws > 1) { fields[$"{set}_{key}_se"] = e.StandardError; fields[$"{key}_draws"] = e.Draws; }
            }
            if (both)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Record("train", train);
            }
            Record("test", test);
            if (o.Method == MarginalLikelihoodMethod.ImportanceWeighted) fields["k"] = o.ImportanceSamples;
            if (o.Method == MarginalLikelihoodMethod.HmcMarginal)
            {
                fields["posterior_samples"] = o.PosteriorSamples; fields["leapfrog"] = o.LeapfrogSteps; fields["burn_in"] = o.BurnIn;
                // Only when it differs from the default, so that the records made before the setting keep their fields.
                if (o.StartCandidates != new MarginalLikelihoodOptions().StartCandidates) fields["start_candidates"] = o.StartCandidates;
            }
        }
        return fields;
    }

    /// <summary>Writes the end-point estimates of the finished run in <paramref name="directory"/> (its checkpoint, trained
    /// by <paramref name="algorithm"/>) to its <c>end-point.json</c>, atomically, unless the file there already holds them.
    /// Returns whether it wrote one; a cancellation, checked between slices of the data, leaves the file as it was.</summary>
    public static bool Ensure(string directory, TrainingAlgorithm algorithm, DataSet data, EndPointOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        string path = Path.Combine(directory, ExperimentRuns.EndPointFileName);
        string checkpoint = Trainer.CheckpointPath(directory);
        if (!File.Exists(checkpoint)) return false;
        bool Applies(MarginalLikelihoodOptions e) => algorithm != TrainingAlgorithm.MonteCarloEm || e.Method == MarginalLikelihoodMethod.HmcMarginal;
        var estimators = options.Estimators.Where(Applies).ToList();
        var testEstimators = options.TestEstimators.Where(Applies).ToList();
        bool activeUnits = options.ActiveUnits && algorithm != TrainingAlgorithm.MonteCarloEm;
        if (estimators.Count + testEstimators.Count == 0 && !activeUnits || Holds(path, estimators, testEstimators, activeUnits)) return false;
        var settings = VariationalAutoEncoder.ReadSettings(checkpoint);
        ImageData First(ImageData x, ulong binarizationSeed) => ForModel(settings, options.Points > 0 ? x.First(options.Points) : x, binarizationSeed);
        using var model = VariationalAutoEncoder.Load(checkpoint);
        var test = First(data.Test, ImageData.TestBinarizationSeed);
        var fields = Estimate(model, First(data.Train, ImageData.TrainEvaluationBinarizationSeed), test, estimators, cancellationToken, testEstimators);
        if (activeUnits)
        {
            var activity = model.LatentActivity(test);
            fields["active_units"] = activity.ActiveUnits;
            fields["latent_activity"] = activity.Activity;
        }
        fields["checkpoint"] = checkpoint;
        fields["dataset"] = data.Description;
        Vae.Core.Files.writeAtomically(path, JsonSerializer.SerializeToUtf8Bytes(fields));
        return true;
    }

    /// <summary>The images a model is evaluated on: as they are, or (for a model trained on dynamically binarised data,
    /// its checkpoint's <c>aevb.binarize</c>) one fixed binary draw of them (<see cref="ImageData.BinarizedOnce"/>), as its
    /// training evaluated them; <paramref name="settings"/> are the checkpoint's (<see cref="VariationalAutoEncoder.ReadSettings"/>).</summary>
    public static ImageData ForModel(IReadOnlyDictionary<string, string> settings, ImageData images, ulong binarizationSeed)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(images);
        return TrainedOnBinaryImages(settings) ? images.BinarizedOnce(binarizationSeed) : images;
    }

    /// <summary>Whether a checkpoint's <paramref name="settings"/> say its model trained with dynamic binarisation.</summary>
    public static bool TrainedOnBinaryImages(IReadOnlyDictionary<string, string> settings) =>
        settings is not null && settings.TryGetValue("aevb.binarize", out var b) && b == "True";

    /// <summary>Whether the end-point file at <paramref name="path"/> holds every field the estimators write (with the same
    /// K): an end point made with other settings, or by <c>vae evaluate</c> with other fields, is made again.</summary>
    static bool Holds(string path, IReadOnlyList<MarginalLikelihoodOptions> estimators, IReadOnlyList<MarginalLikelihoodOptions> testEstimators, bool activeUnits)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var file = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = file.RootElement;
            bool Has(string name) => root.ValueKind == JsonValueKind.Object && root.TryGetProperty(name, out _);
            return (!activeUnits || Has("active_units"))
                && estimators.All(o => Has("train_" + Key(o.Method)) && Has("test_" + Key(o.Method)))
                && testEstimators.All(o => Has("test_" + Key(o.Method)))
                && estimators.Concat(testEstimators).Where(o => o.Method == MarginalLikelihoodMethod.ImportanceWeighted)
                             .All(o => root.TryGetProperty("k", out var k) && k.TryGetInt32(out int value) && value == o.ImportanceSamples);
        }
        catch (JsonException) { return false; }
    }
}
