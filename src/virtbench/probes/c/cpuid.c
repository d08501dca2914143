/* virtbench cpuid helper: print the CPUID hypervisor leaves. */
#include <stdio.h>
#include <cpuid.h>

int main(void)
{
    unsigned int a, b, c, d, leaf;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 2;
    printf("hypervisor_bit=%u\n", (c >> 31) & 1u);
    for (leaf = 0x40000000u; leaf <= 0x40000f00u; leaf += 0x100u) {
        __cpuid(leaf, a, b, c, d);
        if (leaf != 0x40000000u && !(a | b | c | d))
            continue;
        printf("0x%08x eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", leaf, a, b, c, d);
    }
    return 0;
}
