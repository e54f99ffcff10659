using System.Globalization;
using Vae.Data;

namespace Vae;

/// <summary>A configuration whose estimated memory exceeds what the machine has available: refused before anything is
/// allocated, instead of being killed by the operating system partway through.</summary>
public sealed class MemoryBudgetException(string message, long estimatedBytes, long availableBytes) : Exception(message)
{
    /// <summary>The estimated bytes the configuration needs.</summary>
    public long EstimatedBytes { get; } = estimatedBytes;
    /// <summary>The bytes available when it was checked.</summary>
    public long AvailableBytes { get; } = availableBytes;
}

/// <summary>Estimates of the memory a training configuration needs, checked against the memory available before a model,
/// its optimiser state or its data are allocated.</summary>
public static class MemoryBudget
{
    /// <summary>Parameters of a model with these options (encoder, decoder).</summary>
    public static long ParameterCount(VaeModelOptions model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var config = model.ToCore();
        Vae.Core.VaeModelModule.validate(config);
        return Vae.Core.VaeModelModule.parameterShapes(config)
            .Sum(p => p.Item2.Aggregate(1L, (a, b) => checked(a * b)));
    }

    static long Element(VaeModelOptions model) => model.DoublePrecision ? 8 : 4;

    /// <summary>A trainer's model and optimiser: parameters, their gradient, Adagrad's accumulators (and their
    /// per-parameter copy, which the fused step gathers into one vector), and a bfloat16 copy: under five copies of
    /// the parameters; six are counted.</summary>
    public static long ModelBytes(VaeModelOptions model) => checked(6 * ParameterCount(model) * Element(model));

    /// <summary>One training step's activations and their gradients for a minibatch of <paramref name="batch"/>
    /// (inputs, hidden layers, latent heads and outputs of both networks, forward and backward, with temporaries).</summary>
    public static long StepBytes(VaeModelOptions model, int batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        long perDatapoint = 4L * model.InputDimension + 4L * model.HiddenUnits * model.HiddenLayers + 6L * model.LatentDimensions;
        return checked(4 * batch * perDatapoint * Element(model));
    }

    /// <summary>Data held while training: the images as float arrays and as tensors of the model's element type.</summary>
    public static long DataBytes(VaeModelOptions model, long images) =>
        checked(images * model.InputDimension * (4 + Element(model)));

    /// <summary>Memory available to this process: the kernel's MemAvailable on Linux, else what the runtime reports.</summary>
    public static long AvailableBytes()
    {
        const string meminfo = "/proc/meminfo";
        if (File.Exists(meminfo))
            foreach (var line in File.ReadLines(meminfo))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)
                    && long.TryParse(line["MemAvailable:".Length..].Trim().Split(' ')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long kb))
                    return kb * 1024;
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    /// <summary>Raises <see cref="MemoryBudgetException"/>, naming the estimate, its parts and the memory available, when
    /// <paramref name="parts"/> together exceed the memory available.</summary>
    public static void Require(string what, params (string Name, long Bytes)[] parts)
    {
        long total = 0;
        try { foreach (var p in parts) total = checked(total + p.Bytes); }
        catch (OverflowException) { total = long.MaxValue; }
        long available = AvailableBytes();
        if (total <= available) return;
        string detail = string.Join(", ", parts.Select(p => $"{p.Name} {Gb(p.Bytes)}"));
        throw new MemoryBudgetException($"{what}: needs an estimated {Gb(total)} ({detail}), more than the {Gb(available)} available; choose a smaller model or minibatch",
                                        total, available);
    }

    static string Gb(long bytes) => bytes == long.MaxValue ? "more than 9 EB"
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:F2} GB");
}
