using Vae.Data;

namespace Vae.Tests.Foundation;

/// <summary>The façade's argument contracts: a bad argument is refused with an ArgumentException naming the parameter
/// (or the option), never answered with NaN, an empty result or a NullReferenceException from deep inside.</summary>
public class ContractTests
{
    static readonly Lazy<VariationalAutoEncoder> Model = new(() => VariationalAutoEncoder.Create(new VaeModelOptions { HiddenUnits = 10, LatentDimensions = 2 }, seed: 1));
    static readonly ImageData NoImages = new(0, 28, 28, []);
    static readonly ImageData SmallImages = new(1, 2, 2, new float[4]);

    public static TheoryData<string, string> Calls => new()
    {
        { "LogLikelihood with K = 0", "k" },
        { "LogLikelihood of no images", "data" },
        { "LogLikelihood of null", "data" },
        { "LowerBound of no images", "data" },
        { "LowerBound of images of the wrong size", "data" },
        { "Encode of null", "x" },
        { "Encode of rows of the wrong length", "x" },
        { "Decode of null", "z" },
        { "Decode of rows of the wrong length", "z" },
        { "Reconstruct of null", "x" },
        { "Sample of -1 images", "count" },
        { "Manifold of a 0 x 0 grid", "n" },
        { "a NaN step size", "StepSize" },
        { "an infinite step size", "StepSize" },
        { "LatentActivity of no images", "data" },
        { "LatentActivity of null", "data" },
        { "LatentActivity with a negative threshold", "threshold" },
        { "Adam's beta1 of 1", "AdamBeta1" },
    };

    static void Call(string call)
    {
        var m = Model.Value;
        switch (call)
        {
            case "LogLikelihood with K = 0": m.LogLikelihood(new ImageData(1, 28, 28, new float[784]), k: 0); break;
            case "LogLikelihood of no images": m.LogLikelihood(NoImages, k: 5); break;
            case "LogLikelihood of null": m.LogLikelihood(null!, k: 5); break;
            case "LowerBound of no images": m.LowerBound(NoImages); break;
            case "LowerBound of images of the wrong size": m.LowerBound(SmallImages); break;
            case "Encode of null": m.Encode((float[,])null!); break;
            case "Encode of rows of the wrong length": m.Encode(new float[3, 5]); break;
            case "Decode of null": m.Decode((float[,])null!); break;
            case "Decode of rows of the wrong length": m.Decode(new float[3, 5]); break;
            case "Reconstruct of null": m.Reconstruct(null!); break;
            case "Sample of -1 images": m.Sample(-1); break;
            case "Manifold of a 0 x 0 grid": m.Manifold(0); break;
            case "a NaN step size": _ = new AevbTrainer(new VaeModelOptions { HiddenUnits = 10 }, new AevbOptions { StepSize = double.NaN }); break;
            case "an infinite step size": _ = new AevbTrainer(new VaeModelOptions { HiddenUnits = 10 }, new AevbOptions { StepSize = double.PositiveInfinity }); break;
            case "LatentActivity of no images": m.LatentActivity(NoImages); break;
            case "LatentActivity of null": m.LatentActivity(null!); break;
            case "LatentActivity with a negative threshold": m.LatentActivity(new ImageData(1, 28, 28, new float[784]), threshold: -1); break;
            case "Adam's beta1 of 1": _ = new AevbTrainer(new VaeModelOptions { HiddenUnits = 10 }, new AevbOptions { Optimizer = TrainingOptimizer.Adam, AdamBeta1 = 1 }); break;
            default: throw new ArgumentOutOfRangeException(nameof(call), call, "no such call");
        }
    }

    [Theory]
    [MemberData(nameof(Calls))]
    public void ABadArgumentIsRefusedNamingTheParameter(string call, string parameter)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => Call(call));
        Assert.Equal(parameter, e.ParamName);
    }
}
